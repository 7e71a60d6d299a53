"""FMT2xx: reading data files. The checks live in :mod:`fmtkit.loading`; these document them."""

from __future__ import annotations

from fmtkit.rules import ERROR, WARNING, declare

declare(
    "FMT201", "invalid-json", ERROR, "fix the JSON syntax at the given line and column", "file",
    """A record is not valid JSON (or the file is cut short, or holds binary data).

    `datasets` stops on the first such line with an unhelpful Arrow error; fmtkit
    reports every bad line and goes on with the next one.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"
    """,
)  # fmt: skip

declare(
    "FMT202", "not-an-object", ERROR, "make each record a JSON object", "file",
    """A record is not a JSON object (a string, number, array or null).

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl
        ["Hi", "Hello"]
    """,
)  # fmt: skip

declare(
    "FMT203", "invalid-utf8", ERROR, "re-encode the file as UTF-8", "file",
    """A line is not valid UTF-8 (a file saved as GBK, Latin-1 or UTF-16).

    Passes::

        # demo.jsonl
        {"instruction": "你好", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl (latin-1)
        {"instruction": "caf\xe9", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT204", "bom", WARNING, "save the file as UTF-8 without a BOM", "file",
    """The file starts with a UTF-8 byte order mark, which some JSON readers reject.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl (bom)
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT205", "empty-file", ERROR, "add records, or remove the file from the entry", "file",
    """A data file holds no record: LLaMA-Factory would find no valid samples.

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl
    """,
)  # fmt: skip

declare(
    "FMT206", "unreadable-file", ERROR, "check the file's permissions and that it is a regular file", "file",
    """A data file cannot be opened or read (permissions, a broken link, an I/O error).

    Passes::

        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl (unreadable)
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT207", "unknown-form", ERROR, "pass --form, or register the file in a dataset_info.json", "file",
    """A data file given alone has no recognisable form (no known columns).

    Passes::

        # demo.jsonl (alone)
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # demo.jsonl (alone)
        {"question": "Hi", "answer": "Hello"}
    """,
)  # fmt: skip
