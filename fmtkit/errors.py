"""Errors that end a command with a clear message and a documented exit code.

Exit codes (the same for every command):

- 0: success (validate: no finding at or above ``--fail-on``, error by default)
- 1: findings at or above ``--fail-on`` (validate), or a run that failed on its data
- 2: usage error, or an input that cannot be read at all
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class FmtkitError(Exception):
    """An error to show the user as one clear message (no traceback).

    >>> str(FmtkitError("no such folder: data/"))
    'no such folder: data/'
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none), for a one-line message.

    >>> first_line(ValueError("bad value\\nmore detail")), first_line(KeyError())
    ('bad value', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
