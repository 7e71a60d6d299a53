"""Where and how a command writes its report, the same in every command (ruff's naming); '-' for standard input.

``--output-format FORMAT`` chooses the format; ``-o/--output FILE`` writes the
report to FILE (atomically; ``-`` is standard output). Before this scheme
``--output``/``-o`` named the format in ``validate``, ``stats`` and ``rules``:
such a value still works for one release, with a note on stderr.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import click


def output_options(formats: list[str], default: str, file_help: str = "Write the report to this file ('-': standard output)."):
    """The ``--output-format`` and ``-o/--output`` options of a reporting command."""

    def decorate(fn):
        fn = click.option("--output", "-o", "output", metavar="FILE", help=file_help)(fn)
        return click.option("--output-format", type=click.Choice(formats), help=f"Report format. [default: {default}]")(fn)

    return decorate


def resolve_output(output: str | None, output_format: str | None, formats, default: str) -> tuple[str | None, str]:
    """(the report file or None for standard output, the format), reading the old spelling ``--output FORMAT``.

    A value that names a format and no existing file is taken as the format, with a deprecation note.
    """
    if output in formats and output_format is None and not Path(output).exists():
        click.echo(f"fmtkit: `--output {output}` is deprecated and will name a file in the next release; "
                   f"use `--output-format {output}` (`-o/--output FILE` writes the report to FILE)", err=True)  # fmt: skip
        return None, output
    return (None if output == "-" else output), output_format or default


def write_report(output: str | None, produce: Callable[[], None]) -> None:
    """Run ``produce`` (which prints the report); with ``output``, its standard output goes to that file, atomically."""
    if output is None:
        produce()
        return
    from fmtkit.writing import write_lines

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        produce()
    write_lines(Path(output), [buf.getvalue()])


def stdin_copy(folder: Path) -> Path:
    """Standard input as a data file in ``folder``: a JSON array when it starts with '[', else JSON Lines."""
    data = sys.stdin.buffer.read()
    suffix = ".json" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[") else ".jsonl"
    path = folder / f"stdin{suffix}"
    path.write_bytes(data)
    return path
