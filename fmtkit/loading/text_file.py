"""``.txt`` files: pretraining text, one record ``{"text": line}`` per non-empty line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fmtkit.loading import LoadProblem, ProblemSink, Record


def iter_text(path: Path, problem: ProblemSink) -> Iterator[Record]:
    index = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problem(LoadProblem("FMT203", f"invalid UTF-8 (byte 0x{raw[exc.start]:02x})", lineno, index))
                index += 1
                continue
            if lineno == 1 and text.startswith("\ufeff"):
                problem(LoadProblem("FMT204", "the file starts with a UTF-8 byte order mark (BOM)", 1))
                text = text[1:]
            if text:
                yield Record(index, lineno, {"text": text})
                index += 1
