"""Running the ``fmtkit`` command line in this process, the one way the tests do it."""

from __future__ import annotations


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``fmtkit ARGS``; return (exit code, stdout, stderr).

    ``fmtkit.cli.main`` ends with ``sys.exit``; a non-integer exit value counts as 1.
    """
    from fmtkit.cli import main

    capsys.readouterr()  # only this command's output
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli_joined(capsys, *args) -> tuple[int, str]:
    """Like :func:`run_cli`, with stdout and stderr joined."""
    code, out, err = run_cli(capsys, *args)
    return code, out + err
