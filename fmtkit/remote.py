"""``--remote``: datasets read where they live, through fsspec URLs.

- ``memory://``, ``file://`` and any fsspec protocol whose extra is installed
  (``s3://`` with s3fs, ``gs://`` with gcsfs, ``https://``).
- ``hf://datasets/ORG/NAME/...`` through ``huggingface_hub``'s ``HfFileSystem``
  (it honours ``HF_ENDPOINT`` and ``HF_TOKEN``).
- A ``dataset_info.json`` entry with ``hf_hub_url``: its repository's data files,
  of ``subset`` (a configuration in its README.md), under ``folder``, of ``split``,
  as ``datasets.load_dataset`` picks them for LLaMA-Factory (:func:`hub_data_files`).

A :class:`Stage` lays the remote dataset out in a local folder (a temporary
one, deleted after the run): ``dataset_info.json`` whole, each JSON, JSON
Lines, CSV or text data file as its first bytes only (:data:`HEAD`, to detect
its form and columns), media as empty stand-ins (their existence is all the
rules check). The records are then read from the store itself: a
:class:`RemoteFile` streams the file in range requests of :data:`BLOCK` bytes
into the same record loop a local file goes through (``validate``,
``convert``, and the sample reader of ``stats``), so reading starts with the
first block, memory stays at one block, and nothing is copied. Parquet and
Arrow files, which their readers open by path, are copied whole. Findings name the URL. ``--remote`` is
the opt-in to the network: without it fmtkit stays offline.

>>> is_url("hf://datasets/org/name/train.jsonl"), is_url("data/train.jsonl")
(True, False)
>>> hub_split_files(["data/train-00000.jsonl", "data/test-00000.jsonl"], "train")
['data/train-00000.jsonl']
>>> hub_split_files(["a.jsonl", "b.jsonl"], "train"), hub_split_files(["a.jsonl"], "test")
(['a.jsonl', 'b.jsonl'], [])
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

from fmtkit.dataset_info import DATA_EXTENSIONS, INFO_FILE
from fmtkit.errors import EXIT_USAGE, FmtkitError

__all__ = ["HubMismatch", "NotCheckable", "RemoteFile", "Stage", "filesystem", "hub_configs", "hub_data_files", "hub_split_files", "is_url", "needs_remote", "read_here", "remote_error"]

BLOCK = 8 << 20  # bytes read per request, and held, while a file streams
HEAD = 1 << 20  # bytes of a streamed file kept in the stage: its first records tell its form
SEEK_BLOCK = 64 << 10  # bytes read per request where a reader looks around (chunk bounds, the head)
FETCHES = 8  # heads (or copies) of a folder's files read at once
CARD_FILES = ("README.md", ".huggingface.yaml")  # where a dataset repository declares its configurations (subsets)
STREAMED = ("json", "csv", "text")  # kinds of data file whose readers take an open file: streamed, not copied

# datasets' default split names and how a file or folder name says its split (a keyword between non-word characters)
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"), "test": ("test", "testing", "eval", "evaluation")}
_SEP = r"[-._ 0-9]"


def is_url(text: str | Path) -> bool:
    """Whether a source is a URL (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None


def needs_remote(source: str) -> FmtkitError:
    """The usage error for a URL given without ``--remote``."""
    return FmtkitError(f"{source} is a URL: add --remote to read it (fmtkit uses no network unless asked)", EXIT_USAGE)


@contextlib.contextmanager
def read_here(source: str, remote: bool) -> Iterator[tuple[str, Stage | None]]:
    """What ``stats`` reads: a URL (``remote``) laid out in a temporary :class:`Stage`, a local path as is.

    Its JSON, JSON Lines, CSV and text files are kept as heads and read from the
    store through :meth:`Stage.readable`.

    >>> with read_here("data/chat.jsonl", remote=False) as (here, stage):
    ...     here, stage
    ('data/chat.jsonl', None)
    """
    if not is_url(source):
        yield source, None
        return
    if not remote:
        raise needs_remote(source)
    with tempfile.TemporaryDirectory(prefix="fmtkit-remote-") as tmp:
        stage = Stage(Path(tmp))
        yield str(stage.source(source)), stage


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


class HubMismatch(Exception):
    """An ``hf_hub_url`` entry asks for a subset, split or folder its repository does not have (FMT112); ``fix`` says what it has."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


class NotCheckable(Exception):
    """An ``hf_hub_url`` entry whose files fmtkit cannot tell (a loading script): listed as not checked, with this reason."""


def hub_configs(card: dict[str, str], repo: str) -> list[dict[str, Any]]:
    """The ``configs`` of a dataset repository: README.md's YAML front matter, with ``.huggingface.yaml`` over it.

    ``card``: the text of each of those files the repository has. A front matter
    that cannot be read is a :class:`HubMismatch` (``datasets`` stops on it too).

    >>> hub_configs({"README.md": "---\\nconfigs:\\n- config_name: small\\n  data_files: small/*.jsonl\\n---\\n# Small\\n"}, "org/x")
    [{'config_name': 'small', 'data_files': 'small/*.jsonl'}]
    >>> hub_configs({"README.md": "# no front matter"}, "org/x")
    []
    """
    import yaml

    meta: dict[str, Any] = {}
    try:
        if m := re.match(r"\s*---\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", card.get("README.md", ""), re.S):
            meta = yaml.safe_load(m[1]) or {}
        if ".huggingface.yaml" in card:
            meta = {**meta, **(yaml.safe_load(card[".huggingface.yaml"]) or {})}
    except yaml.YAMLError as exc:
        raise HubMismatch(f"the YAML header of {repo}'s README.md cannot be read: {' '.join(str(exc).split())}", "fix the repository's README.md front matter") from None
    configs = meta.get("configs", []) if isinstance(meta, dict) else []
    if not isinstance(configs, list) or not all(isinstance(c, dict) and isinstance(c.get("config_name"), str) for c in configs):
        raise HubMismatch(f"{repo}'s README.md has a `configs` that is not a list of entries with a config_name", "fix the repository's README.md `configs`")
    return configs


def hub_data_files(files: list[str], configs: list[dict[str, Any]], repo: str, subset: str | None, folder: str | None, split: str) -> list[str]:
    """The data files (of ``files``, relative to the repository) that ``load_dataset(repo, name=subset, data_dir=folder, split=split)`` reads.

    As ``datasets`` resolves them: ``subset`` must be one of the README's
    configurations (``default`` when it has none); ``folder`` replaces the
    configuration's files by the folder's; a configuration's ``data_files`` (a
    pattern, a list, or one per split) are patterns under its ``data_dir``;
    without them, files and folders named after a split give it
    (:func:`hub_split_files`). No subset: the configuration marked ``default:
    true`` (or named ``default``, or the only one). What the repository lacks is
    a :class:`HubMismatch`.

    >>> configs = [{"config_name": "small", "data_files": "small/*.jsonl"},
    ...            {"config_name": "big", "data_files": [{"split": "train", "path": "big/train-*"}, {"split": "test", "path": "big/test-*"}]}]
    >>> files = ["small/a.jsonl", "big/train-0.jsonl", "big/test-0.jsonl"]
    >>> hub_data_files(files, configs, "org/x", "big", None, "test")
    ['big/test-0.jsonl']
    >>> hub_data_files(files, configs, "org/x", "big", None, "train[:100]+test")  # datasets' split syntax: the files of each split named
    ['big/test-0.jsonl', 'big/train-0.jsonl']
    >>> hub_data_files(files, configs, "org/x", "tiny", None, "train")
    Traceback (most recent call last):
    fmtkit.remote.HubMismatch: subset 'tiny' is not a configuration of org/x (its README.md configs: 'small', 'big')
    """
    splits = [re.sub(r"\[.*?\]", "", s).strip() for s in split.split("+")]
    if splits != [split]:
        return sorted({f for s in splits for f in hub_data_files(files, configs, repo, subset, folder, s)})
    names = [c["config_name"] for c in configs] or ["default"]
    listed = ", ".join(map(repr, names))
    if subset is not None and subset not in names:
        where = f"its README.md configs: {listed}" if configs else "its README.md has no configs, so its one configuration is 'default'"
        raise HubMismatch(f"subset {subset!r} is not a configuration of {repo} ({where})", f'set "subset" to one of {listed}, or remove it')
    base = f"{str(folder).strip('/')}/" if folder else ""
    for c in configs:  # each configuration's files are looked for, whichever is loaded
        under = "/".join(p for p in (base.strip("/"), str(c.get("data_dir") or "").strip("/")) if p)
        if c.get("data_files") is None and not any(f.startswith(f"{under}/" if under else "") for f in files):
            raise HubMismatch(f"subset {c['config_name']!r} of {repo} has no data file under {under or 'its root'}, so no subset loads",
                              "fix that configuration's data_dir in the repository's README.md" + (', or remove "folder"' if folder else ""))  # fmt: skip
    if folder:
        return _split_of(files, base, split, repo, f"folder {folder!r}")
    if not configs:
        return _split_of(files, "", split, repo, "the repository")
    config = next((c for c in configs if c["config_name"] == subset), None) if subset else _default_config(configs, repo, listed)
    name, data_dir = config["config_name"], str(config.get("data_dir") or "").strip("/")
    prefix = f"{data_dir}/" if data_dir else ""
    if config.get("data_files") is None:
        return _split_of(files, prefix, split, repo, f"subset {name!r}")
    patterns = _split_patterns(config["data_files"])
    if split not in patterns:
        raise HubMismatch(f"split {split!r} is not in subset {name!r} of {repo} (its splits: {', '.join(map(repr, patterns))})",
                          f'set "split" to one of {", ".join(map(repr, patterns))}')  # fmt: skip
    from fsspec.utils import glob_translate

    found = {f for p in patterns[split] for f in files if re.match(glob_translate(prefix + str(p).lstrip("/")), f) and not _hidden(f, str(p))}
    if not found:
        raise HubMismatch(f"no data file of {repo} matches subset {name!r}'s data_files for split {split!r} ({', '.join(map(str, patterns[split]))})",
                          "fix the data_files of that configuration in the repository's README.md, or pick another subset")  # fmt: skip
    return sorted(found)


def _default_config(configs: list[dict[str, Any]], repo: str, listed: str) -> dict[str, Any]:
    """The configuration ``datasets`` loads when no subset is named; several or none to choose from is a :class:`HubMismatch`."""
    default = [c for c in configs if len(configs) == 1 or c["config_name"] == "default" or c.get("default")]
    if len(default) != 1:
        why = "marks several as default" if default else "has several configurations and none is the default"
        raise HubMismatch(f"{repo} {why}, so loading it without a subset fails", f'add "subset": one of {listed}')
    return default[0]


def _split_patterns(data_files: Any) -> dict[str, list[Any]]:
    """A configuration's ``data_files`` as split -> patterns: a pattern or a list of them is ``train``; ``[{split, path}]`` names each split."""
    if isinstance(data_files, dict):
        return {str(k): v if isinstance(v, list) else [v] for k, v in data_files.items()}
    if isinstance(data_files, list) and any(isinstance(d, dict) for d in data_files):
        return {str(d.get("split")): d.get("path") if isinstance(d.get("path"), list) else [d.get("path")] for d in data_files if isinstance(d, dict)}
    return {"train": data_files if isinstance(data_files, list) else [data_files]}


def _split_of(files: list[str], prefix: str, split: str, repo: str, what: str) -> list[str]:
    """The files of ``split`` under ``prefix``, by their names (:func:`hub_split_files`); none is a :class:`HubMismatch`."""
    under = [f[len(prefix) :] for f in files if f.startswith(prefix)]
    if not under:
        raise HubMismatch(f"{what} of {repo} holds no data file", "fix the entry's folder or subset, or add the files to the repository")
    chosen = hub_split_files(under, split)
    if not chosen:
        splits = [s for s in SPLIT_KEYWORDS if hub_split_files(under, s)]
        raise HubMismatch(f"{what} of {repo} has no split {split!r} (its splits: {', '.join(map(repr, splits))})", f'set "split" to one of {", ".join(map(repr, splits))}')
    return [prefix + f for f in chosen]


def _hidden(path: str, pattern: str) -> bool:
    """A file in a hidden (``.x``) or special (``__x``) folder, or hidden itself, that the pattern does not name: ``datasets`` leaves it out."""
    return any(part.startswith((".", "__")) and part not in pattern for part in PurePosixPath(path).parts)


class RemoteFile:
    """A data file in a store, read the way the loaders read a local :class:`~pathlib.Path`.

    It has the part of ``Path`` that :func:`fmtkit.loading.iter_records`, the
    record loop and :func:`fmtkit.locate.locate` use (``name``, ``suffix``,
    ``open``, ``stat``, ``read_text``, ``exists``, ``is_file``). ``open`` gives
    a buffered stream: the bytes of ``head`` (a local file holding the first
    bytes, which :class:`Stage` kept) from disk, the rest in range requests of
    :data:`BLOCK` bytes (:data:`SEEK_BLOCK` with default buffering, for readers
    that look around: chunk bounds, a JSON array read again from an element).

    >>> import fsspec
    >>> fs = fsspec.filesystem("memory"); fs.pipe("/doc/d.jsonl", b'{"a": 1}\\n{"a": 2}\\n')
    >>> from fmtkit.loading import iter_records
    >>> [r.value for r in iter_records(RemoteFile(fs, "/doc/d.jsonl", "memory://doc/d.jsonl"))]
    [{'a': 1}, {'a': 2}]
    """

    def __init__(self, fs: Any, path: str, url: str, head: Path | None = None, whole: bool = False):
        self.fs, self.path, self.url = fs, path, url
        self.head, self.whole = head, whole  # whole: the head is the whole file
        self.name = PurePosixPath(path).name
        self.suffix = PurePosixPath(path).suffix
        self._size: int | None = head.stat().st_size if head is not None and whole else None
        self.marks = {0: 0}  # byte -> the lines before it, at the end of each block a stream read in order (a few per file)
        self.position: int | None = None  # where the last read of it ended (a progress bar's position)

    def __str__(self) -> str:
        return self.url

    def __reduce__(self):  # to a worker process or a Ray node: the store's file, without the head (a local file here)
        return RemoteFile, (self.fs, self.path, self.url)

    def resolve(self) -> RemoteFile:
        return self

    def open(self, mode: str = "r", buffering: int = -1, encoding: str | None = None, errors: str | None = None, newline: str | None = None):
        if set(mode) - set("rbt"):
            raise ValueError(f"{self.url}: a remote file is opened for reading only")
        size = BLOCK if buffering > 1 else SEEK_BLOCK
        fh = io.BufferedReader(_Stream(self, size), buffer_size=size)
        if "b" in mode:
            return fh
        text = io.TextIOWrapper(fh, encoding or "utf-8", errors, newline)
        text._CHUNK_SIZE = size  # else it reads (and requests) 8 KiB at a time
        return text

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        with self.open("r", buffering=BLOCK, encoding=encoding, errors=errors) as fh:
            return fh.read()

    def stat(self) -> SimpleNamespace:
        if self._size is None:
            try:
                self._size = self.fs.size(self.path)
            except Exception as exc:  # noqa: BLE001
                raise remote_error(self.url, exc) from None
        return SimpleNamespace(st_size=self._size)

    def exists(self) -> bool:
        return True

    def is_file(self) -> bool:
        return True


class _Stream(io.RawIOBase):
    """The raw bytes of a :class:`RemoteFile`: its head from disk, the rest from the store (opened at the first byte past the head).

    A store's error (a network lost mid-file) is :func:`remote_error`'s: exit 2, naming the URL.
    """

    def __init__(self, remote: RemoteFile, block: int):
        self.remote, self.block, self.pos = remote, block, 0
        self.head = remote.head.open("rb") if remote.head is not None else None
        self.head_size = remote.head.stat().st_size if remote.head is not None else 0
        self.store: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.pos < self.head_size:
            self.head.seek(self.pos)
            n = self.head.readinto(memoryview(buffer)[: self.head_size - self.pos])
        elif self.remote.whole:
            return 0
        else:
            try:
                if self.store is None:
                    self.store = self.remote.fs.open(self.remote.path, "rb", block_size=self.block, cache_type="none")  # no cache: memory stays at the buffer
                self.store.seek(self.pos)
                n = self.store.readinto(memoryview(buffer)[: self.block])  # one request a block, however much a reader asks for
            except Exception as exc:  # noqa: BLE001 - each store raises its own types
                raise remote_error(self.remote.url, exc) from None
        marks = self.remote.marks
        if self.pos in marks and n:  # read on from a byte whose line is known: so is the line of the byte after
            marks[self.pos + n] = marks[self.pos] + memoryview(buffer)[:n].tobytes().count(b"\n")
        self.pos += n
        self.remote.position = self.pos
        return n

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else self.pos + pos if whence == 1 else self.remote.stat().st_size + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        for fh in (self.head, self.store):
            if fh is not None:
                fh.close()
        super().close()


class Stage:
    """A local folder laid out like the remote dataset (see the module), and the URL each local file stands for.

    Data files that can be streamed are kept as their heads, and :attr:`streamed`
    gives the :class:`RemoteFile` to read for each.
    """

    def __init__(self, root: Path):
        self.root = root
        self.urls: dict[str, str] = {}  # local path (as the report names it) -> URL
        self.streamed: dict[str, RemoteFile] = {}  # local head -> the file it stands for
        self.origin: tuple[str, str] | None = None  # what :meth:`source` made: its local path and its URL

    def readable(self, path: Path) -> Path | RemoteFile:
        """The file to read the records of ``path`` from: a streamed file's :class:`RemoteFile` (``path`` holds its head), else ``path``."""
        return self.streamed.get(str(path), path)

    def named(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of it) with the local path of :meth:`source` written as its URL."""
        if isinstance(value, str):
            return value.replace(*self.origin) if self.origin else value
        if isinstance(value, list):
            return [self.named(v) for v in value]
        if isinstance(value, dict):
            return {k: self.named(v) for k, v in value.items()}
        return value

    def source(self, url: str) -> Path:
        """A remote data file, or a folder (its data files and dataset_info.json), copied here; the local path to check."""
        fs, path = filesystem(url)
        try:
            if fs.info(path)["type"] != "directory":  # a missing repository or file raises here, with its cause
                local = self.root / "source" / PurePosixPath(path).name
                self._copy(fs, path, local, url)
                self.origin = (str(local), url)
                return local
            base = path.rstrip("/")
            every = fs.find(base)
        except Exception as exc:  # noqa: BLE001 - each store raises its own types; say what happened
            raise remote_error(url, exc) from None
        if not any(_wanted(p) for p in every):
            raise FmtkitError(f"{url}: no {INFO_FILE} and no data file here", EXIT_USAGE)
        folder = self.root / "source"
        copies = []
        for p in every:
            rel = p[len(base) + 1 :]
            if _wanted(p):
                copies.append((fs, p, folder / rel, url.rstrip("/") + "/" + rel))
            else:  # media and the rest: only that they exist is checked (FMT603), so an empty stand-in, not a download
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).touch()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(FETCHES) as pool:  # the requests wait on the network: several at once
            list(pool.map(lambda args: self._copy(*args), copies))
        self.origin = (str(folder), url.rstrip("/"))
        return folder

    def hub_entry(self, name: str, raw: dict[str, Any]) -> list[Path]:
        """The data files of an ``hf_hub_url`` entry, as :func:`hub_data_files` picks them, copied here.

        Raises :class:`HubMismatch` (the entry asks for what the repository lacks) or
        :class:`NotCheckable` (a loading script decides what it holds).
        """
        repo = raw["hf_hub_url"]
        base = f"hf://datasets/{repo}"
        fs, path = filesystem(base)
        under = f"{path}/{str(raw['folder']).strip('/')}" if raw.get("folder") else path  # with a folder, only its files count
        try:
            top = [p[len(path) + 1 :] for p in fs.ls(path, detail=False)]  # a missing repository raises here, with its cause
            card = {name: fs.cat_file(f"{path}/{name}").decode("utf-8", "replace") for name in CARD_FILES if name in top}
            listing = [p[len(path) + 1 :] for p in fs.find(under)] if fs.exists(under) else []
        except Exception as exc:  # noqa: BLE001
            raise remote_error(base, exc) from None
        script = f"{repo.rstrip('/').rpartition('/')[2]}.py"
        if script in top:
            raise NotCheckable(f"{base} has a loading script ({script}), which decides what it holds: fmtkit does not run it "
                               "(and the datasets 4 that LLaMA-Factory installs refuses it: \"Dataset scripts are no longer supported\")")  # fmt: skip
        data = [p for p in listing if _wanted(p) and PurePosixPath(p).name != INFO_FILE]
        chosen = hub_data_files(data, hub_configs(card, repo), repo, raw.get("subset"), raw.get("folder"), raw.get("split", "train"))
        out = []
        for rel in chosen:
            local = self.root / "hub" / name / rel
            self._copy(fs, f"{path}/{rel}", local, f"{base}/{rel}")
            out.append(local)
        return out

    def _copy(self, fs: Any, path: str, local: Path, url: str) -> None:
        """``path`` copied to ``local`` in blocks (one range request each); a data file that streams: its head only."""
        local.parent.mkdir(parents=True, exist_ok=True)
        streamed = DATA_EXTENSIONS.get(PurePosixPath(path).suffix.lower()) in STREAMED
        try:
            with fs.open(path, "rb", block_size=HEAD if streamed else BLOCK, cache_type="none") as src, local.open("wb") as dst:
                if streamed:
                    whole = dst.write(src.read(HEAD)) < HEAD
                else:
                    shutil.copyfileobj(src, dst, BLOCK)
        except Exception as exc:  # noqa: BLE001
            raise remote_error(url, exc) from None
        self.urls[str(local)] = url
        if streamed:
            self.streamed[str(local)] = RemoteFile(fs, path, url, head=local, whole=whole)

    def locate(self, report: Any) -> None:
        """Columns of the findings in streamed files, read from their stores (before :meth:`relabel`), as :func:`fmtkit.locate.locate` does locally.

        A JSON Lines file is read again only in the blocks that hold a finding's
        line (:attr:`RemoteFile.marks` says where each block starts); another
        JSON file with findings is read again whole, as :func:`fmtkit.locate.locate` reads it.
        """
        from fmtkit.loading.json_file import is_json_lines
        from fmtkit.locate import locate

        by_file: dict[str, list] = {}
        for f in report.findings:
            if f.file and f.line and f.column is None and str(Path(report.root) / f.file) in self.streamed:
                by_file.setdefault(str(Path(report.root) / f.file), []).append(f)
        for local, group in by_file.items():
            source = self.streamed[local]
            if is_json_lines(source):
                _locate_lines(source, group)
            else:
                locate(report.root, group, path_of=lambda _: source)

    def relabel(self, report: Any, root_url: str | None) -> None:
        """Copies outside the report's root (a hub entry's files) named by their URLs; the root by ``root_url``."""
        for f in report.findings:
            f.file = self.urls.get(f.file, f.file)
            if str(self.root) in f.message:  # a message naming another copied file (the first file of a folder entry, FMT808)
                f.message = re.sub(re.escape(str(self.root)) + r"[^\s:,)]*", lambda m: self.urls.get(m[0], m[0]), f.message)
        for fr in report.files:
            fr.file = self.urls.get(fr.file, fr.file)
        report.detected = {self.urls.get(k, k): v for k, v in report.detected.items()}
        if root_url is not None:
            report.root = root_url


def _locate_lines(source: RemoteFile, group: list) -> None:
    """The columns of findings in a remote JSON Lines file: each finding's line read from the block that holds it."""
    from fmtkit.locate import _place

    wanted: dict[int, list] = {}
    for f in group:
        wanted.setdefault(f.line, []).append(f)
    marks = sorted((before, at) for at, before in source.marks.items())
    with source.open("rb", buffering=BLOCK) as fh:
        n = raw = None
        for line in sorted(wanted):
            before, at = max(m for m in marks if m[1] == 0 or m[0] + 1 < line)  # a mark is inside line before + 1 (but byte 0)
            if n is None or before + 1 > n:  # a later block than the one being read: go there, past the end of that line
                fh.seek(at)
                n = before + 1 if at and fh.readline() else before
            while n < line:
                raw = fh.readline()
                n += 1
                if not raw:
                    return
            text = raw.decode("utf-8-sig" if line == 1 else "utf-8", errors="replace")
            for f in wanted[line]:
                _place(f, text, 0, line)


def _wanted(path: str) -> bool:
    name = PurePosixPath(path).name
    return name == INFO_FILE or PurePosixPath(name).suffix.lower() in DATA_EXTENSIONS


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path in it; an unknown protocol or a missing extra is a usage error."""
    import fsspec

    options = {}
    if url.startswith("hf://"):
        _allow_hub()  # says how to install huggingface_hub where it is missing
        from huggingface_hub import constants

        options["endpoint"] = constants.ENDPOINT  # HF_ENDPOINT here, also where a worker or a Ray node reads the file
    try:
        return fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)  # a fresh listing each run
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
    status = getattr(getattr(exc, "response", None), "status_code", None)  # an HTTP error without a hub error code
    if "GatedRepoError" in kinds or "PermissionError" in kinds or status in (401, 403):
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
