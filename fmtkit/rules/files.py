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

declare(
    "FMT208", "llamafactory-v1-format", ERROR,
    "train it with LLaMA-Factory's v1 (USE_V1=1), or rewrite it in a 0.9.x form (OpenAI messages with string content, ShareGPT, Alpaca)", "file",
    """A data file is in LLaMA-Factory's experimental v1 data format, which the ``dataset_info.json`` loader of 0.9.x does not read.

    LLaMA-Factory's v1 trainers (``USE_V1=1``) read samples whose
    ``messages`` hold content as lists of ``{"type": "text", "value": ...}``
    parts and a ``loss_weight`` per message (and ``chosen_messages`` /
    ``rejected_messages`` for pairs). Read as the 0.9.x openai or sharegpt
    form, every record would be malformed; fmtkit says so once per file and
    checks no record (``fmtkit convert`` does not read the v1 format either).

    Passes::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]}

    Fails::

        # demo.jsonl (alone)
        {"messages": [{"role": "user", "content": [{"type": "text", "value": "hi"}], "loss_weight": 0.0}, {"role": "assistant", "content": [{"type": "text", "value": "Hello"}], "loss_weight": 1.0}]}
    """,
)  # fmt: skip


def v1_message(kind: str) -> str:
    """FMT208's message for a file of v1 ``kind`` samples ("sft", "dpo")."""
    return f"LLaMA-Factory's v1 data format ({kind} samples, USE_V1=1): the dataset_info.json loader of LLaMA-Factory 0.9.x does not read it"

