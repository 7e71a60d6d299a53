"""FMT1xx: ``dataset_info.json`` and its entries.

These run before any data file is read: the file as a whole (``info`` scope)
and each entry as LLaMA-Factory resolves it (``entry`` scope).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from fmtkit.dataset_info import (
    COLUMN_DEFAULTS, DATA_EXTENSIONS, ENTRY_KEYS, FORMATTINGS, LEGACY_KEYS, SOURCE_KEYS, TAG_DEFAULTS, DatasetEntry,
)  # fmt: skip
from fmtkit.rules import ERROR, INFO, WARNING, declare, rule

declare(
    "FMT100", "info-schema", ERROR, "make the entry match schemas/dataset_info.schema.json", "info",
    """`dataset_info.json` does not match its JSON Schema (a value of the wrong type).

    Checked against ``schemas/dataset_info.schema.json``; more specific rules
    (unknown keys, missing source) report their own codes first.

    Passes::

        # entry: {"ranking": true, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Go away."}

    Fails::

        # entry: {"ranking": "yes"}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT101", "info-invalid-json", ERROR, "fix the JSON syntax (no trailing commas, double quotes only)", "info",
    """`dataset_info.json` is not valid JSON.

    LLaMA-Factory fails to start on it. Trailing commas and single quotes are
    the usual causes; the finding gives the line and column.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl",},}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip

declare(
    "FMT102", "info-not-object", ERROR, "make dataset_info.json an object of name -> entry object", "info",
    """`dataset_info.json` (or one of its entries) is not a JSON object.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        [{"file_name": "demo.jsonl"}]
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip


def _suggest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@rule("FMT103", "unknown-key", ERROR, "rename or remove the key: LLaMA-Factory silently ignores it", scope="entry")
def unknown_key(entry: DatasetEntry) -> Iterator[str]:
    """An entry, its `columns` or its `tags` has a key LLaMA-Factory does not know.

    LLaMA-Factory ignores unknown keys without a word, so ``"format": "sharegpt"``
    quietly means alpaca, and a misspelled column keeps its default.

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"format": "sharegpt"}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    for key in entry.raw:
        if key not in ENTRY_KEYS and key not in LEGACY_KEYS:
            yield f"unknown key {key!r}{_suggest(key, ENTRY_KEYS)}"
    for block, known in (("columns", COLUMN_DEFAULTS), ("tags", TAG_DEFAULTS)):
        value = entry.raw.get(block)
        if isinstance(value, dict):
            for key in value:
                if key not in known:
                    yield f"unknown key {key!r} in `{block}`{_suggest(key, known)}"


@rule("FMT104", "no-source", ERROR, 'add "file_name" (a local file or folder) or a hub key', scope="entry")
def no_source(entry: DatasetEntry) -> Iterator[str]:
    """An entry names no data source.

    Every entry needs one of ``file_name``, ``hf_hub_url``, ``ms_hub_url``,
    ``om_hub_url``, ``script_url`` or ``cloud_file_name``; without one
    LLaMA-Factory dies with a bare ``KeyError: 'file_name'``.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"formatting": "alpaca"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    if entry.source_key is None:
        near = [k for k in entry.raw if _suggest(k, SOURCE_KEYS)]
        hint = f"; {near[0]!r}{_suggest(near[0], SOURCE_KEYS)}" if near else ""
        yield f"the entry names no source (file_name, hf_hub_url, ...){hint}"


@rule("FMT118", "several-sources", ERROR, "keep one source key per entry", scope="entry")
def several_sources(entry: DatasetEntry) -> Iterator[str]:
    """An entry names more than one source; LLaMA-Factory silently reads only one.

    Its precedence is hub ids (``hf_hub_url``, ``ms_hub_url``, ``om_hub_url``:
    mirrors of each other may stand together), then ``script_url``, then
    ``cloud_file_name``, then ``file_name``.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl", "hf_hub_url": "org/demo"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    given = [k for k in SOURCE_KEYS if k in entry.raw]
    kinds = {"hub" if k in ("hf_hub_url", "ms_hub_url", "om_hub_url") else k for k in given}
    if len(kinds) > 1:
        yield f"the entry names {', '.join(given)}; LLaMA-Factory reads only {entry.source_key}"


@rule("FMT105", "bad-formatting", ERROR, "use formatting alpaca, sharegpt or openai", scope="entry")
def bad_formatting(entry: DatasetEntry) -> Iterator[str]:
    """`formatting` is not one of alpaca, sharegpt or openai (fatal in LLaMA-Factory).

    Passes::

        # entry: {"formatting": "sharegpt"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"formatting": "chatml"}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    """
    if entry.formatting not in FORMATTINGS:
        yield f"formatting {entry.formatting!r} is not one of {', '.join(FORMATTINGS)}{_suggest(str(entry.formatting), FORMATTINGS)}"


@rule("FMT106", "messages-column-unset", ERROR, 'add "messages": "<column>" to `columns`', scope="entry")
def messages_unset(entry: DatasetEntry) -> Iterator[str]:
    """A sharegpt/openai entry's `columns` leaves out `messages`.

    `columns` is all-or-nothing: once present, every column it leaves out is
    unset rather than its default. A conversation entry without ``messages``
    crashes LLaMA-Factory with ``KeyError``.

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be nice."}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"system": "system"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be nice."}
    """
    if entry.is_conversation and entry.messages is None:
        yield "`columns` is given but leaves out `messages`, so it is unset (not 'conversations')"


@rule("FMT107", "alpaca-prompt-unset", ERROR, 'add "prompt": "<column>" to `columns`', scope="entry")
def prompt_unset(entry: DatasetEntry) -> Iterator[str]:
    """An alpaca entry's `columns` leaves out `prompt`, so no record has an instruction.

    Passes::

        # entry: {"columns": {"prompt": "question", "response": "answer"}}
        # demo.jsonl
        {"question": "Hi", "answer": "Hello"}

    Fails::

        # entry: {"columns": {"response": "answer"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "answer": "Hello"}
    """
    if entry.formatting == "alpaca" and entry.columns_given and entry.prompt is None and entry.query is None:
        yield "`columns` is given but leaves out `prompt`, so it is unset (not 'instruction')"


@rule("FMT108", "tags-ignored", WARNING, "remove `tags`, or set formatting to sharegpt", scope="entry")
def tags_ignored(entry: DatasetEntry) -> Iterator[str]:
    """`tags` on an alpaca entry: LLaMA-Factory ignores it.

    Passes::

        # entry: {"formatting": "sharegpt", "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
        # demo.jsonl
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

    Fails::

        # entry: {"tags": {"role_tag": "role"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    if "tags" in entry.raw and not entry.is_conversation:
        yield "`tags` is ignored for formatting 'alpaca' (tags apply to sharegpt and openai entries)"


@rule("FMT109", "legacy-key", INFO, "remove the key", scope="entry")
def legacy_key(entry: DatasetEntry) -> Iterator[str]:
    """A legacy key (``file_sha1``) that LLaMA-Factory no longer reads.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl", "file_sha1": "abc"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    for key in LEGACY_KEYS:
        if key in entry.raw:
            yield f"{key!r} is a legacy key that LLaMA-Factory ignores"


@rule("FMT119", "openai-system-suffix", INFO,
      "without tool_calls, use formatting sharegpt with the same OpenAI tags (convert --register does); tool_calls need the openai reader",
      scope="entry")  # fmt: skip
def openai_system_suffix(entry: DatasetEntry) -> Iterator[str]:
    """`formatting: openai`: LLaMA-Factory's openai reader changes every system prompt.

    Its converter (0.9.5) appends "detailed thinking off" to the system prompt
    of a record without tools (unless the prompt already holds a "detailed
    thinking" switch; a record without a system prompt gets that text as its
    system prompt) and a newline to one with tools, so training sees system
    prompts the data does not hold. Only OpenAI ``tool_calls`` need that reader:
    the ShareGPT reader with OpenAI tags reads everything else the same way.

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    Fails::

        # entry: {"formatting": "openai", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}
        # demo.jsonl
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    """
    if entry.formatting == "openai":
        yield "formatting 'openai': LLaMA-Factory's openai reader appends \"detailed thinking off\" to each system prompt (a newline when the record has tools)"


@rule("FMT110", "kto-and-ranking", ERROR, "use either ranking (pairs) or kto_tag (labels), not both", scope="entry")
def kto_and_ranking(entry: DatasetEntry) -> Iterator[str]:
    """An entry sets both `ranking` and a `kto_tag` column: the data is one or the other.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello", "label": true}
        {"instruction": "Hi", "input": "", "output": "Go away", "label": false}

    Fails::

        # entry: {"ranking": true, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected", "kto_tag": "label"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello", "rejected": "Go away", "label": true}
    """
    if entry.ranking is True and entry.kto_tag is not None:
        yield "both ranking and columns.kto_tag are set"


@rule("FMT111", "ranking-columns-unset", ERROR, 'add "chosen" and "rejected" to `columns`', scope="entry")
def ranking_columns(entry: DatasetEntry) -> Iterator[str]:
    """A preference entry (`ranking: true`) does not map `chosen` and `rejected` columns.

    They have no default, so LLaMA-Factory stops loading the entry with
    ``KeyError: None``, whatever the records hold. fmtkit reads no record of
    the entry until they are mapped (their findings would all be this one).

    Passes::

        # entry: {"ranking": true, "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Go away."}

    Fails::

        # entry: {"ranking": true}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Go away."}
    """
    if entry.ranking is True:
        missing = [c for c in ("chosen", "rejected") if getattr(entry, c) is None]
        if missing:
            yield f"ranking is true but `columns` does not map {' and '.join(missing)}: LLaMA-Factory stops loading the entry with KeyError: None"


@rule("FMT112", "file-missing", ERROR, "fix file_name (relative to the dataset folder) or add the file", scope="entry")
def file_missing(entry: DatasetEntry) -> Iterator[str]:
    """`file_name` points to no file or folder.

    Paths are relative to the dataset folder (LLaMA-Factory's ``dataset_dir``),
    not to where the command runs. Globs are not expanded. With ``--remote``,
    an ``hf_hub_url`` entry whose ``subset`` (a configuration in the
    repository's README.md), ``split`` or ``folder`` the repository does not
    have is reported here too, naming what it has: ``load_dataset`` stops on it.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "data/demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    path = entry.data_path()
    if path is not None and not path.exists():
        glob = " (globs are not expanded)" if any(c in str(entry.source) for c in "*?[") else ""
        yield f"file_name {entry.source!r} does not exist in the dataset folder{glob}"


@rule("FMT113", "bad-extension", ERROR, "use .json, .jsonl, .csv, .parquet, .arrow or .txt", scope="entry")
def bad_extension(entry: DatasetEntry) -> Iterator[str]:
    """A data file has an extension LLaMA-Factory cannot load, or a folder mixes extensions.

    A folder's direct children (hidden files too, no recursion) must all share
    one supported extension.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "demo.yaml"}}
        # demo.yaml
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    from fmtkit.loading import data_files

    path = entry.data_path()
    if path is None or not path.exists():
        return
    files = data_files(path)
    if path.is_dir() and not files:
        yield f"folder {entry.source!r} holds no files"
        return
    exts = sorted({p.suffix.lower() for p in files})
    bad = [p.name for p in files if p.suffix.lower() not in DATA_EXTENSIONS]
    if bad:
        yield f"unsupported extension in {entry.source!r}: {', '.join(bad[:3])}" + (" (hidden files count too)" if any(b.startswith(".") for b in bad) else "")
    elif len({DATA_EXTENSIONS[e] for e in exts}) > 1 or (len(exts) > 1 and path.is_dir()):
        rare = min(exts, key=lambda e: sum(p.suffix.lower() == e for p in files))
        odd = [p.name for p in files if p.suffix.lower() == rare][:3]
        yield f"folder {entry.source!r} mixes extensions {', '.join(exts)} (e.g. {', '.join(odd)}); LLaMA-Factory needs one"


@rule("FMT114", "hub-entry", INFO, "nothing to fix: `fmtkit validate --remote` reads hf_hub_url entries from the hub and checks them", scope="entry")
def hub_entry(entry: DatasetEntry) -> Iterator[str]:
    """An entry reads from a hub, a script or cloud storage: not checked locally.

    Passes::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}, "remote": {"hf_hub_url": "org/data"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    if entry.source_key is not None and not entry.is_local:
        yield f"{entry.source_key} {entry.source!r} is not checked locally"


@rule("FMT116", "tags-incomplete", ERROR, "give role_tag, content_tag, user_tag and assistant_tag in `tags`", scope="entry")
def tags_incomplete(entry: DatasetEntry) -> Iterator[str]:
    """A conversation entry's `tags` leaves out a tag every message needs.

    `tags` is all-or-nothing like `columns`: the tags it does not give are
    unset, not their defaults. Without a role or content tag no message can be
    read; without a user or assistant tag no turn can stand anywhere.

    Passes::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

    Fails::

        # entry: {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content"}}
        # demo.jsonl
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    """
    if entry.is_conversation and entry.tags_given:
        missing = [t for t in ("role_tag", "content_tag", "user_tag", "assistant_tag") if getattr(entry, t) is None]
        if missing:
            yield f"`tags` leaves out {', '.join(missing)}, so they are unset (not their defaults)"


@rule("FMT117", "split-local", ERROR, 'remove "split" (local files only have a train split)', scope="entry")
def split_local(entry: DatasetEntry) -> Iterator[str]:
    """A local entry asks for a split other than ``train``: a local file only has ``train``.

    Passes::

        # entry: {"split": "train"}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # entry: {"split": "test"}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """
    if entry.is_local and entry.split != "train":
        yield f"split {entry.split!r}: LLaMA-Factory loads local files as the train split only"


declare(
    "FMT115", "undefined-dataset", ERROR, "use an entry name from dataset_info.json", "info",
    """A dataset name asked for (``--entry``, ``dataset:`` in a config) is not in `dataset_info.json`.

    LLaMA-Factory stops with "Undefined dataset". Users often give the file
    name instead of the entry name, or run from the wrong folder; the message
    suggests the closest entry and says which entry reads a file of that name.

    Passes::

        # entry-arg: demo
        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}

    Fails::

        # entry-arg: demo.jsonl
        # dataset_info.json
        {"demo": {"file_name": "demo.jsonl"}}
        # demo.jsonl
        {"instruction": "Hi", "input": "", "output": "Hello"}
    """,
)  # fmt: skip


def undefined_message(name: str, entries: dict) -> str:
    """The FMT115 message, with a did-you-mean and the entry that reads a file of that name."""
    by_file = [k for k, v in entries.items() if isinstance(v, dict) and v.get("file_name") in (name, name.rstrip("/"))]
    if by_file:
        return f"undefined dataset {name!r}: that is a file name; the entry reading it is {by_file[0]!r}"
    return f"undefined dataset {name!r}{_suggest(name, entries)}"


@rule("FMT120", "name-not-string", ERROR, 'write each column and tag name as a string: "columns": {"prompt": "instruction"}', scope="entry")
def name_not_string(entry: DatasetEntry) -> Iterator[str]:
    """A column or tag name in `columns` or `tags` is not a string (a number, list or object).

    LLaMA-Factory looks columns up by these names and fails on anything else;
    fmtkit reads no record of such an entry.

    Passes::

        # entry: {"columns": {"prompt": "instruction", "response": "output"}}
        # demo.jsonl
        {"instruction": "Hi", "output": "Hello"}

    Fails::

        # entry: {"columns": {"prompt": ["instruction"], "response": "output"}}
        # demo.jsonl
        {"instruction": "Hi", "output": "Hello"}
    """
    yield from entry.not_names
