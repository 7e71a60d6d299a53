"""One way to find a local entry of a dataset folder: ``dataset_info.json``, the entry, its data.

``convert`` / ``read``, ``stats`` / ``render`` and ``fmtkit train`` all resolve
entries through :func:`load_entry`, so each failure reads the same everywhere
and ends the command with exit code 2 (:class:`~fmtkit.errors.FmtkitError`):

- no ``dataset_info.json`` in the folder, or one that is not a JSON object;
- an unknown entry name (FMT115's message, with a did-you-mean);
- an entry that is not local (a hub, script or cloud source: it names the key
  and says to download the data first): :class:`EntryNotLocal`;
- an entry with no source key, or whose ``file_name`` is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmtkit.dataset_info import INFO_FILE, SOURCE_KEYS, DatasetEntry
from fmtkit.errors import FmtkitError

__all__ = ["EntryNotLocal", "load_entry", "load_info", "local_entries"]


class EntryNotLocal(FmtkitError):
    """The entry reads from a hub, a script or the cloud, not from a local file."""

    def __init__(self, message: str, entry: DatasetEntry):
        super().__init__(message)
        self.entry = entry


def load_info(folder: str | Path) -> dict[str, Any]:
    """The entries of ``folder/dataset_info.json``, as written."""
    folder = Path(folder)
    path = folder / INFO_FILE
    if not path.is_file():
        raise FmtkitError(f"{folder}: no {INFO_FILE} here; pass a data file, or the dataset folder that holds {INFO_FILE}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FmtkitError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FmtkitError(f"{path}: not valid JSON ({exc}); run `fmtkit validate {folder}` for details") from None
    if not isinstance(info, dict):
        raise FmtkitError(f"{path}: must be a JSON object of dataset entries")
    return info


def local_entries(info: dict[str, Any]) -> list[str]:
    """The names of the entries that read a local file (``file_name`` is their source), in file order."""
    return [name for name, raw in info.items() if isinstance(raw, dict) and DatasetEntry.from_dict(name, raw).is_local]


def load_entry(folder: str | Path, name: str, info: dict[str, Any] | None = None) -> DatasetEntry:
    """The local entry ``name`` of ``folder/dataset_info.json``, its data checked to exist.

    ``info``: the file's entries, when already read (:func:`load_info`).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "dataset_info.json").write_text('{"alpaca_demo": {"file_name": "a.json"}}')
    >>> load_entry(d, "alpaca_dmeo")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: ...: undefined dataset 'alpaca_dmeo' (did you mean 'alpaca_demo'?)
    """
    from fmtkit.rules.info import undefined_message

    folder = Path(folder)
    path = folder / INFO_FILE
    if info is None:
        info = load_info(folder)
    if name not in info:
        raise FmtkitError(f"{path}: {undefined_message(name, info)}")
    raw = info[name]
    if not isinstance(raw, dict):
        raise FmtkitError(f"{path}: entry {name!r} is not an object")
    entry = DatasetEntry.from_dict(name, raw, folder)
    if entry.not_names:
        raise FmtkitError(f"{path}: entry {name!r}: {'; '.join(entry.not_names)} (column and tag names are strings)")
    if entry.source_key is None:
        raise FmtkitError(f"{path}: entry {name!r} has no source key: give it file_name (or one of {', '.join(SOURCE_KEYS[:-1])})")
    if not entry.is_local:
        raise EntryNotLocal(
            f"{path}: entry {name!r} is not local: it reads {entry.source_key} {entry.source!r};"
            " download the data first, then point file_name at the downloaded file or folder",
            entry,
        )
    target = entry.data_path()
    if target is None:
        raise FmtkitError(f"{path}: entry {name!r}: file_name must be a string (a path relative to {folder})")
    if not target.exists():
        raise FmtkitError(f"{path}: entry {name!r}: file_name {entry.source!r} not found in {folder}")
    if not target.is_dir():
        from fmtkit.loading import check_data_file

        check_data_file(target)
    return entry
