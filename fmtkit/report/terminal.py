"""Human output that data cannot take over: control characters from data are shown escaped, never sent to the terminal.

Entry names, file names and record text come from files a user may not have
written. Printed raw, an escape sequence in them could clear the screen, set
the window title, forge a hyperlink (OSC 8) or hide a line (``\\r``). Every
human report prints through :func:`console` (a rich console whose text is
passed through :func:`printable` just before it is written, after rich's own
styles are laid out), and plain messages through :func:`printable`.

>>> printable("evil\\x1b[2J\\x07 name\\u202e")
'evil\\\\x1b[2J\\\\x07 name\\\\u202e'
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["console", "printable"]

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    ch = ord(m.group())
    return f"\\x{ch:02x}" if ch < 0x100 else f"\\u{ch:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``); tab and newline are kept."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def console(**kwargs: Any) -> Any:
    """A rich ``Console`` (same arguments) that escapes control characters in everything it prints."""
    return _safe_console_class()(**kwargs)


_CLASS: list[type] = []


def _safe_console_class() -> type:
    if _CLASS:
        return _CLASS[0]
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        """Text segments are escaped; rich's own control segments (cursor moves of a live display) are kept."""

        def render(self, renderable: Any, options: Any = None) -> Any:
            for segment in super().render(renderable, options):
                if segment.control or not _CONTROL.search(segment.text):
                    yield segment
                else:
                    yield Segment(printable(segment.text), segment.style)

    _CLASS.append(SafeConsole)
    return SafeConsole
