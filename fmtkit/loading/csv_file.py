"""CSV files: one record per row, header names as keys; cells are strings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from fmtkit.loading import LoadProblem, ProblemSink, Record

csv.field_size_limit(1 << 30)


def iter_csv(path: Path, problem: ProblemSink) -> Iterator[Record]:
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                return
            index, start = 0, reader.line_num + 1
            for row in reader:
                if row:
                    yield Record(index, start, dict(zip(header, row, strict=False)))
                    index += 1
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            problem(LoadProblem("FMT203", f"invalid UTF-8 (byte 0x{exc.object[exc.start]:02x})", reader.line_num + 1, None))
        except csv.Error as exc:
            problem(LoadProblem("FMT201", f"invalid CSV: {exc}", reader.line_num, None))
