"""The one way fmtkit writes a file: atomically, in place of its target, never onto a file it must not touch.

- :func:`atomic_write` writes a new file beside its target under a temporary
  name (:func:`temp_path`: ``.NAME.fmtkit-PID-TAG.tmp``), flushes it to disk and
  renames it over the target: readers see the old file or the complete new one.
  The new file keeps the target's mode and owner; a target that is a symbolic
  link is replaced at the link's destination (the link stays a link).
- :func:`publish` does the rename for a temporary file written some other way
  (the parts of a parallel conversion); :func:`discard` removes one.
- :func:`atomic_folder` does the same for a folder of files (an exported
  model): they are written under a temporary folder, then the folder is
  renamed into place, or, where the target folder already has files, each new
  file replaces its namesake; other files of the target are left as they are.
- :func:`locked` holds an advisory lock on a folder around a read-modify-write
  (``convert --register`` editing ``dataset_info.json``).
- :func:`refuse_output` refuses an output that is the input, ``dataset_info.json``
  or a file (or inside a folder) that an entry of a dataset folder reads.
- :func:`cleanup_on_sigterm` removes the temporary files of a run ended by
  SIGTERM; :func:`sweep_stale` removes those of runs killed outright (SIGKILL),
  matching only fmtkit's own names whose process is gone.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> with atomic_write(d / "out.txt") as fh:
...     _ = fh.write(b"hello")
>>> (d / "out.txt").read_bytes(), sorted(p.name for p in d.iterdir())
(b'hello', ['out.txt'])
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from fmtkit.errors import EXIT_FINDINGS, EXIT_USAGE, FmtkitError

__all__ = ["atomic_folder", "atomic_write", "cleanup_on_sigterm", "discard", "locked", "publish", "refuse_model_folder", "refuse_output", "sweep_stale", "temp_path", "write_failure"]

# ".out.jsonl.fmtkit-1234-0.tmp": the target's name, then fmtkit's mark, the writing process and a counter.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.fmtkit-(?P<pid>\d+)-(?P<tag>[0-9a-z]+)\.tmp$")
_LIVE: set[Path] = set()  # temporary files this process has made and not yet published or discarded
_COUNTER = itertools.count()


def temp_path(target: Path, tag: str | int | None = None) -> Path:
    """A temporary name beside ``target`` that :func:`sweep_stale` recognises as this process's.

    >>> temp_path(Path("d/out.jsonl"), 3).name == f".out.jsonl.fmtkit-{os.getpid()}-3.tmp"
    True
    """
    tag = next(_COUNTER) if tag is None else tag
    path = target.parent / f".{target.name}.fmtkit-{os.getpid()}-{tag}.tmp"
    _LIVE.add(path)
    return path


def real_target(path: Path) -> Path:
    """Where writing ``path`` must land: the destination of a symbolic link, else ``path`` itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a temporary file for writing ``path``; on a clean exit it replaces ``path``, on an error it is removed."""
    target = real_target(Path(path))
    folder = target.parent
    if not folder.is_dir():
        raise FmtkitError(f"{path}: the folder {folder} does not exist", EXIT_USAGE)
    sweep_stale(folder)
    tmp = temp_path(target)
    with _discarded_on_error(tmp, Path(path)):
        with tmp.open("xb") as fh:
            yield fh
        publish(tmp, target)


@contextlib.contextmanager
def _discarded_on_error(tmp: Path, path: Path) -> Iterator[None]:
    """Remove ``tmp`` if the block fails; an OSError becomes :func:`write_failure`'s message for ``path``."""
    try:
        yield
    except OSError as exc:
        discard(tmp)
        raise write_failure(exc, path) from None
    except BaseException:
        discard(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; on a clean exit its files land in ``path``, on an error it is removed.

    A new (or empty) ``path`` gets the whole folder by one rename; into a folder
    that has files, each new file is renamed over its namesake, so no file is
    ever seen half written and files fmtkit did not write stay.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_folder(d / "model") as tmp:
    ...     _ = (tmp / "config.json").write_text("{}")
    >>> sorted(p.name for p in d.iterdir()), (d / "model" / "config.json").read_text()
    (['model'], '{}')
    """
    target = real_target(Path(path))
    if target.exists() and not target.is_dir():
        raise FmtkitError(f"{path} is a file, not a folder: choose a folder for the output", EXIT_USAGE)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(target.parent)
        tmp = temp_path(target)
        tmp.mkdir()
    except OSError as exc:
        raise write_failure(exc, Path(path)) from None
    with _discarded_on_error(tmp, Path(path)):
        yield tmp
        if target.is_dir() and any(target.iterdir()):
            for root, _dirs, files in os.walk(tmp):
                rel = Path(root).relative_to(tmp)
                (target / rel).mkdir(exist_ok=True)
                for name in files:
                    os.replace(Path(root) / name, target / rel / name)
            shutil.rmtree(tmp)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.rmdir()
            os.replace(tmp, target)
        _LIVE.discard(tmp)


def write_failure(exc: OSError, path: Path) -> FmtkitError:
    """The clear message for an OSError met writing ``path``: exit 2 for a folder fmtkit may not write in, else 1.

    >>> import errno
    >>> str(write_failure(OSError(errno.ENOSPC, "No space left on device"), Path("o.jsonl")))
    'the disk is full: o.jsonl was not written; free some space and run again'
    """
    import errno

    if exc.errno == errno.ENOSPC:
        return FmtkitError(f"the disk is full: {path} was not written; free some space and run again", EXIT_FINDINGS)
    if exc.errno == errno.EFBIG:
        return FmtkitError(f"a file size limit (ulimit -f) was reached: {path} was not written", EXIT_FINDINGS)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return FmtkitError(f"cannot write {path}: {exc.strerror or exc}; choose another output", EXIT_USAGE)
    return FmtkitError(f"cannot write {path}: {exc.strerror or exc}", EXIT_FINDINGS)


def publish(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk and rename it over ``path`` (through a symbolic link), with the mode and owner ``path`` had."""
    target = real_target(path)
    try:
        old = target.stat()
    except FileNotFoundError:
        old = None
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
        if old is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.fchmod(fd, old.st_mode & 0o7777)
            if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(PermissionError):  # only root may give a file away; keep what we can
                    os.fchown(fd, old.st_uid, old.st_gid)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _LIVE.discard(tmp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def discard(*paths: Path) -> None:
    """Remove temporary files and folders (those that exist)."""
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        _LIVE.discard(p)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``folder`` while the block runs; other fmtkit runs wait."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def sweep_stale(folder: Path) -> list[Path]:
    """Remove fmtkit's temporary files and folders in ``folder`` left by processes that no longer run; return them."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = TEMP_NAME.match(name)
        if m is None or _alive(int(m["pid"])):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_symlink():
                continue
            if path.is_file():
                path.unlink()
                removed.append(path)
            elif path.is_dir():  # an atomic_folder of a killed run
                shutil.rmtree(path)
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number we cannot check: leave its files alone
    return True


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM removes this process's temporary files and ends it (exit 143)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        discard(*list(_LIVE))
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def refuse_output(output: Path, inputs: Iterable[Path] = (), dataset_folders: Iterable[Path] = ()) -> None:
    """Refuse (exit 2) to write ``output`` onto an input, a ``dataset_info.json``, or data an entry of a dataset folder reads.

    >>> import tempfile, json
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "dataset_info.json").write_text(json.dumps({"a": {"file_name": "a.json"}}))
    >>> refuse_output(d / "a.json", dataset_folders=[d])
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: ...a.json: the entry 'a' of ...dataset_info.json reads it; write the output to another file
    """
    from fmtkit.dataset_info import INFO_FILE

    out = Path(os.path.realpath(output))
    for f in inputs:
        if Path(os.path.realpath(f)) == out:
            raise FmtkitError(f"{output}: that is the input; write the output to another file")
    if out.name == INFO_FILE:
        raise FmtkitError(f"{output}: that is a dataset's {INFO_FILE}; write the output to another file")
    for folder in dict.fromkeys(Path(os.path.realpath(d)) for d in dataset_folders):
        info_path = folder / INFO_FILE
        for name, data in _entry_data(info_path):
            if data == out:
                raise FmtkitError(f"{output}: the entry {name!r} of {info_path} reads it; write the output to another file")
            if data in out.parents:
                raise FmtkitError(f"{output}: inside the folder the entry {name!r} of {info_path} reads; write the output elsewhere")


def refuse_model_folder(output: str | Path, key: str, protected: dict[str, str | Path | None]) -> None:
    """Refuse (exit 2) a model output folder that is, or lies inside, a folder it must not write into.

    ``protected``: what each folder is ("model_name_or_path", "dataset_dir"...) -> the folder.

    >>> refuse_model_folder("models/base", "output_dir", {"model_name_or_path": "models/base/"})
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: output_dir models/base is model_name_or_path: training would overwrite its files; choose another folder
    """
    if Path(output).exists() and not Path(output).is_dir():
        raise FmtkitError(f"{key} {output} is a file, not a folder: choose a folder for the model files")
    out = Path(os.path.realpath(output))
    for what, folder in protected.items():
        if folder is None or str(folder) == "":
            continue
        f = Path(os.path.realpath(folder))
        if out == f:
            raise FmtkitError(f"{key} {output} is {what}: {_WRITER[key]} would overwrite its files; choose another folder")
        if f in out.parents:
            raise FmtkitError(f"{key} {output} is inside {what} ({folder}); choose a folder outside it")


_WRITER = {"output_dir": "training", "-o": "the export"}


def _entry_data(info_path: Path) -> list[tuple[str, Path]]:
    """(entry name, resolved data path) for every local entry of a ``dataset_info.json`` that can be read."""
    import json

    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    out = []
    for name, raw in info.items() if isinstance(info, dict) else ():
        source = raw.get("file_name") if isinstance(raw, dict) else None
        if isinstance(source, str) and source:
            out.append((str(name), Path(os.path.realpath(info_path.parent / source))))
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write text ``lines`` to ``path`` atomically (:func:`atomic_write`): ``path`` is the old file or the complete new one."""
    with atomic_write(path) as handle:
        for line in lines:
            handle.write(line.encode("utf-8"))
