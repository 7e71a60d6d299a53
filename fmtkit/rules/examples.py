"""The examples in rule docstrings, as real dataset folders.

A rule's docstring has a ``Passes::`` and a ``Fails::`` block. Each block is a
small dataset folder written as text: ``# NAME`` starts a file (``# demo.jsonl``;
``(alone)`` validates that file without a dataset_info.json, ``(latin-1)``
encodes it so, ``(bom)`` prefixes a byte order mark, ``(unreadable)`` makes it
a FIFO); ``# entry: {...}`` gives the entry of ``demo`` (``file_name`` is
added); ``# stage: sft`` and ``# entry-arg: NAME`` set options. The tests build
each folder and run the full validator on it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

_BLOCK = re.compile(r"^(Passes|Fails)::\s*$", re.M)


@dataclass
class Example:
    kind: str  # "pass" | "fail"
    files: dict[str, tuple[str, set[str]]] = field(default_factory=dict)
    entry: dict | None = None
    stage: str | None = None
    entry_arg: str | None = None

    def build(self, folder: Path) -> tuple[Path, dict]:
        """Write the example under ``folder``; return (path to validate, keyword arguments)."""
        folder.mkdir(parents=True, exist_ok=True)
        alone = None
        data_name = None
        for name, (text, flags) in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)  # "# demo/a.jsonl": a file of a folder entry
            if "unreadable" in flags:
                os.mkfifo(path)
            else:
                data = text.encode("latin-1" if "latin-1" in flags else "utf-8")
                if "bom" in flags:
                    data = b"\xef\xbb\xbf" + data
                path.write_bytes(data + (b"\n" if text else b""))
            if "alone" in flags:
                alone = path
            if name != "dataset_info.json" and data_name is None and path.suffix in (".json", ".jsonl", ".csv", ".txt", ".yaml"):
                data_name = name
        kwargs: dict = {}
        if self.stage:
            kwargs["stage"] = self.stage
        if alone is not None:
            return alone, kwargs
        if "dataset_info.json" not in self.files:
            info = {"demo": {"file_name": data_name, **(self.entry or {})}}
            (folder / "dataset_info.json").write_bytes(orjson.dumps(info))
        if self.entry_arg:
            kwargs["entries"] = [self.entry_arg]
        return folder, kwargs


def parse_examples(doc: str) -> list[Example]:
    """The Passes / Fails examples of one rule docstring."""
    out = []
    parts = _BLOCK.split(doc)
    for kind, body in zip(parts[1::2], parts[2::2], strict=True):
        ex = Example("pass" if kind == "Passes" else "fail")
        current: str | None = None
        lines: list[str] = []
        flags: set[str] = set()
        for raw in body.splitlines():
            if raw.strip() and not raw.startswith("    "):
                break  # end of the indented block
            line = raw[8:] if raw.startswith("        ") else raw.strip()
            if line.startswith("# entry: "):
                ex.entry = orjson.loads(line[len("# entry: "):])
            elif line.startswith("# stage: "):
                ex.stage = line[len("# stage: "):].strip()
            elif line.startswith("# entry-arg: "):
                ex.entry_arg = line[len("# entry-arg: "):].strip()
            elif line.startswith("# "):
                _add_file(ex, current, lines, flags)
                name, _, rest = line[2:].partition(" ")
                current, lines, flags = name, [], set(re.findall(r"[\w-]+", rest))
            elif current is not None:
                lines.append(line)
        _add_file(ex, current, lines, flags)
        out.append(ex)
    return out


def _add_file(ex: Example, name: str | None, lines: list[str], flags: set[str]) -> None:
    if name is not None:
        ex.files[name] = ("\n".join(lines).strip("\n"), flags)
