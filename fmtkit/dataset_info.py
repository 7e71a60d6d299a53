"""The ``dataset_info.json`` layer: entries resolved exactly as LLaMA-Factory resolves them.

LLaMA-Factory reads each entry into an attribute object whose defaults apply
only when a block is *absent*: when ``columns`` is present, every column it does
not name becomes unset (not its default), and the same holds for ``tags``.
:class:`DatasetEntry` reproduces that, so every check sees the file as
LLaMA-Factory will read it.

>>> e = DatasetEntry.from_dict("demo", {"file_name": "demo.json"})
>>> (e.formatting, e.prompt, e.query, e.response, e.messages)
('alpaca', 'instruction', 'input', 'output', 'conversations')
>>> e = DatasetEntry.from_dict("demo", {"file_name": "d.json", "columns": {"prompt": "text"}})
>>> (e.prompt, e.response)
('text', None)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFO_FILE = "dataset_info.json"

SOURCE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name")
ENTRY_KEYS = SOURCE_KEYS + (
    "formatting", "ranking", "subset", "split", "folder", "num_samples", "columns", "tags",
)  # fmt: skip
LEGACY_KEYS = ("file_sha1",)
FORMATTINGS = ("alpaca", "sharegpt", "openai")

COLUMN_DEFAULTS: dict[str, str | None] = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
TAG_DEFAULTS: dict[str, str | None] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
ALPACA_ONLY = ("prompt", "query", "response", "history")
DATA_EXTENSIONS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow", ".txt": "text"}


@dataclass(slots=True)
class DatasetEntry:
    """One entry of ``dataset_info.json`` with LLaMA-Factory's defaults applied.

    Column and tag attributes hold the *name used in the data* (or None when
    unset). ``raw`` keeps the entry as written, for messages and rewriting.
    """

    name: str
    raw: dict[str, Any]
    source_key: str | None = None
    source: str | None = None
    formatting: str = "alpaca"
    ranking: bool = False
    split: str = "train"
    num_samples: int | None = None
    # columns
    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    messages: str | None = "conversations"
    system: str | None = None
    tools: str | None = None
    images: str | None = None
    videos: str | None = None
    audios: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None
    # tags (sharegpt / openai only)
    role_tag: str | None = "from"
    content_tag: str | None = "value"
    user_tag: str | None = "human"
    assistant_tag: str | None = "gpt"
    observation_tag: str | None = "observation"
    function_tag: str | None = "function_call"
    system_tag: str | None = "system"
    columns_given: bool = False
    tags_given: bool = False
    base_dir: Path = field(default_factory=Path)
    not_names: list[str] = field(default_factory=list)  # column or tag names that are not strings (FMT120): left unset

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any], base_dir: Path | str = ".") -> DatasetEntry:
        """Resolve an entry the way LLaMA-Factory's ``get_dataset_list`` does."""
        entry = cls(name=name, raw=raw, base_dir=Path(base_dir))
        for key in SOURCE_KEYS:  # LLaMA-Factory's precedence: hubs, script, cloud, file
            if key in raw:
                entry.source_key, entry.source = key, raw[key]
                break
        entry.formatting = raw.get("formatting", "alpaca")
        entry.ranking = raw.get("ranking", False)
        entry.split = raw.get("split", "train")
        entry.num_samples = raw.get("num_samples")
        columns = raw.get("columns")
        if isinstance(columns, dict):
            entry.columns_given = True
            for key in COLUMN_DEFAULTS:
                setattr(entry, key, entry._name("columns", key, columns.get(key)))  # all-or-nothing: absent means unset
        tags = raw.get("tags")
        if entry.formatting in ("sharegpt", "openai") and isinstance(tags, dict):
            entry.tags_given = True
            for key in TAG_DEFAULTS:
                setattr(entry, key, entry._name("tags", key, tags.get(key)))
        return entry

    def _name(self, group: str, key: str, value: Any) -> str | None:
        """A column or tag name as written; one that is not a string is noted in ``not_names`` and left unset."""
        if value is None or isinstance(value, str):
            return value
        from fmtkit.rules import json_type

        self.not_names.append(f"{group}.{key} is a JSON {json_type(value)} ({value!r:.40}), not a string")
        return None

    @classmethod
    def for_file(cls, form: str, head: Iterable[Any] = (), base_dir: Path | str = ".", file_name: str | None = None) -> DatasetEntry:
        """The entry a bare data file of ``form`` stands for, as a user would register it.

        The form's own entry (:data:`fmtkit.forms.BARE_ENTRIES`); the optional columns that the
        file's first records (``head``) carry are mapped too (an Alpaca file's
        ``system`` / ``history`` / ``tools``, any file's media lists), and a
        ShareGPT file may keep its turns under ``messages``. ``validate`` and
        ``convert`` both read bare files through this one entry.

        >>> DatasetEntry.for_file("openai").role_tag
        'role'
        >>> DatasetEntry.for_file("alpaca", [{"instruction": "a", "output": "b", "system": "s"}]).system
        'system'
        """
        from fmtkit.forms import BARE_ENTRIES

        raw = copy.deepcopy(BARE_ENTRIES[form])
        seen: set[str] = set()
        for record in head:
            if isinstance(record, dict):
                seen.update(record)
        optional = ["images", "videos", "audios"]
        if form.startswith("alpaca") and form != "alpaca-pretrain":
            optional = ["system", "history", "tools", *optional]
        add = [k for k in optional if k in seen]
        columns = raw.get("columns")
        if form.startswith("sharegpt") and "conversations" not in seen and "messages" in seen:
            columns["messages"] = "messages"
        if add:
            if columns is None:
                columns = raw["columns"] = {"prompt": "instruction", "query": "input", "response": "output"}
            for key in add:
                columns.setdefault(key, key)
        if file_name is not None:
            raw["file_name"] = file_name
        return cls.from_dict(f"<{form}>", raw, base_dir)

    @property
    def is_bare(self) -> bool:
        """Whether this entry stands for a bare data file (:meth:`for_file`), not an entry of a ``dataset_info.json``."""
        return self.name.startswith("<")

    @property
    def is_local(self) -> bool:
        return self.source_key == "file_name"

    @property
    def is_conversation(self) -> bool:
        return self.formatting in ("sharegpt", "openai")

    @property
    def is_kto(self) -> bool:
        return self.kto_tag is not None

    @property
    def is_pretrain(self) -> bool:
        """Alpaca entries that map only a text column: ``columns: {"prompt": "text"}``."""
        return (
            self.formatting == "alpaca" and not self.ranking and self.prompt is not None
            and self.response is None and self.query is None and self.history is None
            and self.kto_tag is None
        )  # fmt: skip

    @property
    def form(self) -> str:
        """fmtkit's name for what this entry holds, e.g. ``sharegpt-preference`` or ``alpaca-kto``."""
        base = "sharegpt" if self.is_conversation else "alpaca"
        if self.is_conversation and self.role_tag == "role":
            base = "openai"
        if self.ranking:
            return f"{base}-preference"
        if self.is_kto:
            return f"{base}-kto"
        if self.is_pretrain:
            return "alpaca-pretrain"
        return base

    def column_map(self) -> dict[str, str]:
        """Role of data -> column name, for the columns that are set."""
        return {k: getattr(self, k) for k in COLUMN_DEFAULTS if getattr(self, k) is not None}

    def used_columns(self) -> dict[str, str]:
        """The columns this entry's formatting actually reads (alpaca ignores `messages`, conversations ignore `prompt`...).

        >>> DatasetEntry.from_dict("d", {"file_name": "d.json"}).used_columns()
        {'prompt': 'instruction', 'query': 'input', 'response': 'output'}
        """
        skip = ALPACA_ONLY if self.is_conversation else ("messages",)
        return {k: v for k, v in self.column_map().items() if k not in skip}

    def data_path(self) -> Path | None:
        """The local file or folder of a ``file_name`` entry (absolute paths are allowed)."""
        if not self.is_local or not isinstance(self.source, str):
            return None
        return self.base_dir / self.source
