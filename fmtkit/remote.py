"""``--remote``: datasets read where they live, through fsspec URLs.

- ``memory://``, ``file://`` and any fsspec protocol whose extra is installed
  (``s3://`` with s3fs, ``gs://`` with gcsfs, ``https://``).
- ``hf://datasets/ORG/NAME/...`` through ``huggingface_hub``'s ``HfFileSystem``
  (it honours ``HF_ENDPOINT`` and ``HF_TOKEN``).
- A ``dataset_info.json`` entry with ``hf_hub_url``: its repository's data files,
  under ``folder``, of ``split``, as ``datasets.load_dataset`` picks them for LLaMA-Factory.

Each remote data file is copied in blocks (one range request each) into a
local staging folder (a temporary one, deleted after the run), then checked
like a local file; other files of a folder (media) are only listed, as their
existence is all the rules check. Findings name the URL. ``--remote`` is the opt-in to the network: without it fmtkit stays offline.

>>> is_url("hf://datasets/org/name/train.jsonl"), is_url("data/train.jsonl")
(True, False)
>>> hub_split_files(["data/train-00000.jsonl", "data/test-00000.jsonl"], "train")
['data/train-00000.jsonl']
>>> hub_split_files(["a.jsonl", "b.jsonl"], "train"), hub_split_files(["a.jsonl"], "test")
(['a.jsonl', 'b.jsonl'], [])
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from fmtkit.dataset_info import DATA_EXTENSIONS, INFO_FILE
from fmtkit.errors import EXIT_USAGE, FmtkitError

__all__ = ["Stage", "filesystem", "hub_split_files", "is_url", "remote_error"]

BLOCK = 8 << 20  # bytes read per request

# datasets' default split names and how a file or folder name says its split (a keyword between non-word characters)
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"), "test": ("test", "testing", "eval", "evaluation")}
_SEP = r"[-._ 0-9]"


def is_url(text: str | Path) -> bool:
    """Whether a source is a URL (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None


def _says_split(rel: str, keyword: str) -> bool:
    """A file named ``...-train-...`` or under a folder named ``train``/``train-x``/``x-train``: datasets' default patterns."""
    *folders, name = PurePosixPath(rel).parts
    k = re.escape(keyword)
    in_name = re.match(rf"^(.*{_SEP})?{k}{_SEP}", name) is not None
    in_folder = any(re.fullmatch(rf"(.*{_SEP})?{k}({_SEP}.*)?", f) for f in folders)
    return in_name or in_folder


def hub_split_files(files: list[str], split: str) -> list[str]:
    """The files of ``split`` among a repository's data files (relative paths), as ``datasets`` resolves them.

    When no file names a split, every file is the ``train`` split.
    """
    named = {s: [f for f in files if any(_says_split(f, k) for k in kws)] for s, kws in SPLIT_KEYWORDS.items()}
    if not any(named.values()):
        return sorted(files) if split == "train" else []
    return sorted(named.get(split, []))


class Stage:
    """A local folder holding copies of remote files, and the URL each copy stands for (for the report)."""

    def __init__(self, root: Path):
        self.root = root
        self.urls: dict[str, str] = {}  # local path (as the report names it) -> URL

    def source(self, url: str) -> Path:
        """A remote data file, or a folder (its data files and dataset_info.json), copied here; the local path to check."""
        fs, path = filesystem(url)
        try:
            if fs.info(path)["type"] != "directory":  # a missing repository or file raises here, with its cause
                local = self.root / "source" / PurePosixPath(path).name
                self._copy(fs, path, local, url)
                return local
            base = path.rstrip("/")
            every = fs.find(base)
        except Exception as exc:  # noqa: BLE001 - each store raises its own types; say what happened
            raise remote_error(url, exc) from None
        if not any(_wanted(p) for p in every):
            raise FmtkitError(f"{url}: no {INFO_FILE} and no data file here", EXIT_USAGE)
        folder = self.root / "source"
        for p in every:
            rel = p[len(base) + 1 :]
            if _wanted(p):
                self._copy(fs, p, folder / rel, url.rstrip("/") + "/" + rel)
            else:  # media and the rest: only that they exist is checked (FMT603), so an empty stand-in, not a download
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).touch()
        return folder

    def hub_entry(self, name: str, raw: dict[str, Any]) -> list[Path]:
        """The data files of an ``hf_hub_url`` entry (``folder`` and ``split`` honoured; not ``subset``), copied here."""
        repo, folder, split = raw["hf_hub_url"], raw.get("folder"), raw.get("split", "train")
        base = f"hf://datasets/{repo}" + (f"/{folder.strip('/')}" if folder else "")
        fs, path = filesystem(base)
        try:
            fs.info(path)  # a missing repository or folder raises here, with its cause
            every = [p[len(path) + 1 :] for p in fs.find(path) if _wanted(p) and PurePosixPath(p).name != INFO_FILE]
        except Exception as exc:  # noqa: BLE001
            raise remote_error(base, exc) from None
        chosen = hub_split_files(every, split)
        if not chosen:
            raise FmtkitError(f"entry {name!r}: {base} holds no data file of split {split!r}", EXIT_USAGE)
        out = []
        for rel in chosen:
            local = self.root / "hub" / name / rel
            self._copy(fs, f"{path}/{rel}", local, f"{base}/{rel}")
            out.append(local)
        return out

    def _copy(self, fs: Any, path: str, local: Path, url: str) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            with fs.open(path, "rb", block_size=BLOCK, cache_type="none") as src, local.open("wb") as dst:  # one range request a block
                shutil.copyfileobj(src, dst, BLOCK)
        except Exception as exc:  # noqa: BLE001
            raise remote_error(url, exc) from None
        self.urls[str(local)] = url

    def relabel(self, report: Any, root_url: str | None) -> None:
        """Copies outside the report's root (a hub entry's files) named by their URLs; the root by ``root_url``."""
        for f in report.findings:
            f.file = self.urls.get(f.file, f.file)
        for fr in report.files:
            fr.file = self.urls.get(fr.file, fr.file)
        report.detected = {self.urls.get(k, k): v for k, v in report.detected.items()}
        if root_url is not None:
            report.root = root_url


def _wanted(path: str) -> bool:
    name = PurePosixPath(path).name
    return name == INFO_FILE or PurePosixPath(name).suffix.lower() in DATA_EXTENSIONS


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path in it; an unknown protocol or a missing extra is a usage error."""
    import fsspec

    if url.startswith("hf://"):
        _allow_hub()
    try:
        return fsspec.core.url_to_fs(url, skip_instance_cache=True)  # a fresh listing each run
    except ImportError as exc:
        raise FmtkitError(f"{url}: reading {url.split('://')[0]}:// needs its fsspec package: {exc}", EXIT_USAGE) from None
    except ValueError as exc:
        raise FmtkitError(f"{url}: {exc}", EXIT_USAGE) from None


def _allow_hub() -> None:
    """``--remote`` opts in to the hub: lift the offline mode fmtkit set itself; one the user set is an error."""
    import os

    from fmtkit.cli import OFFLINE_SET_HERE

    try:
        from huggingface_hub import constants
    except ImportError:
        raise FmtkitError("hf:// URLs need huggingface_hub: pip install 'fmtkit[hub]'", EXIT_USAGE) from None
    if "HF_HUB_OFFLINE" in OFFLINE_SET_HERE:
        os.environ["HF_HUB_OFFLINE"] = "0"
        constants.HF_HUB_OFFLINE = False
    if constants.HF_HUB_OFFLINE:
        raise FmtkitError("--remote reads from the hub, but HF_HUB_OFFLINE is set: unset it (or set HF_HUB_OFFLINE=0)", EXIT_USAGE)


def remote_error(url: str, exc: BaseException) -> FmtkitError:
    """A clear message (exit 2) for what a store raised: a missing repository or file, no access, no network."""
    kinds, seen = set(), exc
    while seen is not None:  # a file system may raise FileNotFoundError from the hub's RepositoryNotFoundError
        kinds |= {c.__name__ for c in type(seen).__mro__}
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "GatedRepoError" in kinds or "PermissionError" in kinds:
        why = "no access (a gated or private repository? log in with `hf auth login`, or set HF_TOKEN)"
    elif "RepositoryNotFoundError" in kinds:
        why = "no such repository, or no access to it (a private one? log in with `hf auth login`, or set HF_TOKEN)"
    elif "FileNotFoundError" in kinds or "EntryNotFoundError" in kinds:
        why = "no such file or folder"
    elif kinds & {"ConnectError", "ConnectionError", "TimeoutException", "ConnectTimeout", "ReadTimeout", "NetworkError", "gaierror", "OfflineModeIsEnabled"}:
        why = f"cannot reach it (no network?): {text}"
    else:
        why = text
    return FmtkitError(f"{url}: {why}", EXIT_USAGE)
