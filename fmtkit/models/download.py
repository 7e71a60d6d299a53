"""Download a model repository from a Hugging Face compatible hub or mirror, or from ModelScope.

The endpoint and the cache folder are resolved here, when the download runs,
and passed to ``huggingface_hub`` explicitly: ``huggingface_hub`` reads
``HF_ENDPOINT`` and ``HF_HOME`` once, when it is imported, so setting them
later in the same process would otherwise be ignored.

>>> resolve_endpoint("https://hf-mirror.com/", environ={})
Endpoint(url='https://hf-mirror.com', origin='--endpoint')
>>> resolve_endpoint(None, environ={"HF_ENDPOINT": "https://hf-mirror.com"}).origin
'HF_ENDPOINT'
>>> resolve_cache_dir(None, environ={"HF_HOME": "/data/hf"})
CacheDir(path=PosixPath('/data/hf/hub'), origin='HF_HOME')

Resuming: a file whose connection drops is continued where it stopped with an
HTTP ``Range`` request (``huggingface_hub`` retries a few times), and running
the same download again skips the files already complete.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fmtkit.errors import EXIT_FINDINGS, EXIT_USAGE, FmtkitError

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_MODELSCOPE_DOMAIN = "www.modelscope.cn"
SOURCES = ("huggingface", "modelscope")
INFO_TIMEOUT_S = 30.0  # the repository listing; files have huggingface_hub's own timeouts
MIRROR_HINT = "a mirror can be used with --endpoint URL or HF_ENDPOINT (for example https://hf-mirror.com)"
TOKEN_HINT = "log in with `hf auth login` or set HF_TOKEN"


@dataclass(frozen=True)
class Endpoint:
    """The hub to download from, and what chose it: ``--endpoint``, ``HF_ENDPOINT`` or ``default``."""

    url: str
    origin: str


@dataclass(frozen=True)
class CacheDir:
    """The hub cache folder, and what chose it: ``--cache-dir``, ``HF_HUB_CACHE``, ``HF_HOME`` or ``default``."""

    path: Path
    origin: str


@dataclass
class Download:
    """One download: where from, where to, and what.

    ``folder`` is where the files are: ``local_dir`` when one is given, else the
    snapshot folder inside the cache. ``files`` and ``total_bytes`` are those
    selected by the include/exclude patterns (``total_bytes`` is None when the
    hub does not give sizes).
    """

    repo_id: str
    source: str
    endpoint: Endpoint
    folder: Path
    cache: CacheDir | None = None
    revision: str | None = None
    commit: str | None = None
    files: list[str] = field(default_factory=list)
    total_bytes: int | None = None
    missing_bytes: int | None = None  # bytes not already in the folder (what this run fetches)


def resolve_endpoint(endpoint: str | None, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The hub URL: ``endpoint`` if given, else ``HF_ENDPOINT``, else huggingface.co."""
    env = os.environ if environ is None else environ
    if endpoint:
        url, origin = endpoint, "--endpoint"
    elif env.get("HF_ENDPOINT"):
        url, origin = env["HF_ENDPOINT"], "HF_ENDPOINT"
    else:
        url, origin = DEFAULT_ENDPOINT, "default"
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise FmtkitError(f"the endpoint must be an http:// or https:// URL, got {url!r} (from {origin})", EXIT_USAGE)
    if not _well_formed_url(url):
        raise FmtkitError(f"the endpoint {url!r} (from {origin}) is not a valid URL: http(s)://HOST[:PORT][/PATH]", EXIT_USAGE)
    return Endpoint(url, origin)


def _well_formed_url(url: str) -> bool:
    """A host, a numeric port if any, no query, fragment, white space or control character."""
    from urllib.parse import urlsplit

    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not a number in range
    except ValueError:
        return False
    return bool(parts.hostname) and not parts.query and not parts.fragment and not url.endswith(("?", "#"))


# owner/name (or a bare name, as old hub repositories are): letters, digits, '-', '_', '.'; no '..'
_REPO_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ETAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a git or sha256 hash on a real hub: a plain file name


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a repository id (``owner/name``), else exit 2: it becomes part of URLs and paths.

    >>> check_repo_id("../x")
    Traceback (most recent call last):
    ...
    fmtkit.errors.FmtkitError: '../x' is not a repository id: give owner/name (letters, digits, '-', '_', '.'), e.g. Qwen/Qwen3-0.6B
    """
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise FmtkitError(
            f"{repo_id!r} is not a repository id: give owner/name (letters, digits, '-', '_', '.'), e.g. Qwen/Qwen3-0.6B", EXIT_USAGE
        )
    return repo_id


def _safe_repo_path(name: object) -> bool:
    """A file path of a repository that stays inside the folder it is written to."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\0" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def resolve_cache_dir(cache_dir: str | Path | None, environ: Mapping[str, str] | None = None) -> CacheDir:
    """The hub cache folder, resolved as ``huggingface_hub`` resolves it, but now rather than at import."""
    env = os.environ if environ is None else environ
    if cache_dir:
        return CacheDir(Path(cache_dir).expanduser(), "--cache-dir")
    if env.get("HF_HUB_CACHE"):
        return CacheDir(Path(env["HF_HUB_CACHE"]).expanduser(), "HF_HUB_CACHE")
    if env.get("HF_HOME"):
        return CacheDir(Path(env["HF_HOME"]).expanduser() / "hub", "HF_HOME")
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path("~/.cache").expanduser()
    return CacheDir(base / "huggingface" / "hub", "default")


def download_model(
    repo_id: str,
    *,
    local_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    source: str = "huggingface",
    token: str | bool | None = None,
    max_workers: int = 8,
    progress: bool = True,
    on_start: Callable[[Download], None] | None = None,
) -> Download:
    """Download the files of a model repository and return where they are.

    ``include`` / ``exclude`` are glob patterns on the file paths of the
    repository (``*.json``, ``*.safetensors``). ``token`` is passed to the hub:
    ``None`` uses the logged-in token, ``False`` sends none (what a third-party
    mirror should get). ``on_start`` is called once the repository is found
    and before any file is fetched, with the endpoint, folder and files.

    Raises :class:`~fmtkit.errors.FmtkitError` with a clear message (exit
    code 2 for an unknown or gated repository, 1 for a network or disk
    failure), never a traceback-worthy hub exception.
    """
    if source not in SOURCES:
        raise FmtkitError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}", EXIT_USAGE)
    check_repo_id(repo_id)
    if source == "modelscope":
        if endpoint:
            raise FmtkitError(
                "--endpoint applies to Hugging Face compatible hubs; ModelScope reads its address from MODELSCOPE_DOMAIN",
                EXIT_USAGE,
            )
        return _download_modelscope(repo_id, local_dir, cache_dir, revision, include, exclude, on_start)
    return _download_hub(
        repo_id, resolve_endpoint(endpoint), resolve_cache_dir(cache_dir), local_dir, revision,
        list(include or []) or None, list(exclude or []) or None, token, max_workers, progress, on_start,
    )  # fmt: skip


def _download_hub(
    repo_id: str,
    endpoint: Endpoint,
    cache: CacheDir,
    local_dir: str | Path | None,
    revision: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
    token: str | bool | None,
    max_workers: int,
    progress: bool,
    on_start: Callable[[Download], None] | None,
) -> Download:
    try:
        import huggingface_hub
    except ImportError:
        raise FmtkitError(
            "fmtkit download needs huggingface_hub: pip install 'fmtkit[hub]'", EXIT_USAGE
        ) from None
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise FmtkitError("downloads are disabled: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set", EXIT_USAGE)

    where = dict(repo_id=repo_id, revision=revision, endpoint=endpoint)
    with _hub_endpoint(endpoint.url):
        # Ask for the file list first (one small request): an unknown, gated or
        # unreachable repository then fails here with a clear message, instead
        # of snapshot_download quietly returning an older copy already on disk.
        api = huggingface_hub.HfApi(endpoint=endpoint.url, token=token)
        try:
            info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=INFO_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised below
            raise _explain(exc, **where) or exc
        plan = _plan(info, repo_id, endpoint, cache, local_dir, revision, include, exclude)
        if plan.missing_bytes:
            _check_free_space(plan.missing_bytes, plan.folder)
        if on_start is not None:
            on_start(plan)
        with _progress_bars(progress), _checked_file_metadata(plan.commit, at=f"{endpoint.url} (from {endpoint.origin})"):
            try:
                path = huggingface_hub.snapshot_download(
                    repo_id,
                    revision=plan.commit,  # pinned: every file comes from the commit checked here
                    endpoint=endpoint.url,
                    cache_dir=str(cache.path),
                    local_dir=str(plan.folder) if local_dir is not None else None,
                    allow_patterns=include,
                    ignore_patterns=exclude,
                    token=token,
                    max_workers=max_workers,
                )
            except Exception as exc:  # noqa: BLE001 - translated, or re-raised below
                raise _explain(exc, **where, folder=plan.folder) or exc
    plan.folder = Path(path)
    return plan


def _plan(
    info: object,
    repo_id: str,
    endpoint: Endpoint,
    cache: CacheDir,
    local_dir: str | Path | None,
    revision: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
) -> Download:
    """What a download will fetch, from the hub's description of the repository."""
    from huggingface_hub.utils import filter_repo_objects

    at = f"{endpoint.url} (from {endpoint.origin})"
    commit = getattr(info, "sha", None)
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        raise FmtkitError(f"{at} answered a malformed commit id for {repo_id} ({str(commit)[:80]!r}, not 40 hex digits); refusing to download", EXIT_FINDINGS)
    siblings = {s.rfilename: s.size for s in (getattr(info, "siblings", None) or [])}
    unsafe = [name for name in siblings if not _safe_repo_path(name)]
    if unsafe:
        raise FmtkitError(f"{at} lists a file name that would be written outside the download folder ({str(unsafe[0])[:80]!r}); refusing to download", EXIT_FINDINGS)
    files = sorted(filter_repo_objects(siblings, allow_patterns=include, ignore_patterns=exclude))
    if not files:
        patterns = " ".join([f"--include {p}" for p in include or []] + [f"--exclude {p}" for p in exclude or []])
        what = f"no file of {repo_id} matches {patterns}" if patterns else f"{repo_id} has no files"
        raise FmtkitError(what, EXIT_USAGE)
    if local_dir is not None:
        folder = Path(local_dir).expanduser()
    else:
        folder = cache.path / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit
    sizes = [siblings[f] for f in files]
    total = missing = None
    if all(s is not None for s in sizes):
        total = sum(sizes)
        missing = sum(size for name, size in zip(files, sizes, strict=True) if not _complete(folder / name, size))
    return Download(
        repo_id=repo_id, source="huggingface", endpoint=endpoint, folder=folder, cache=cache,
        revision=revision, commit=commit, files=files, total_bytes=total, missing_bytes=missing,
    )  # fmt: skip


def _complete(path: Path, size: int | None) -> bool:
    try:
        return path.is_file() and (size is None or path.stat().st_size == size)
    except OSError:
        return False


def _check_free_space(needed: int, folder: Path) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return  # cannot tell: let the download try
    if usage.total == 0:  # /proc, /sys: no disk behind the folder
        raise FmtkitError(f"{probe} is not on a disk (a virtual file system such as /proc): choose another --local-dir / --cache-dir", EXIT_USAGE)
    free = usage.free
    if free < needed:
        raise FmtkitError(
            f"not enough disk space: the download needs {human_size(needed)} and {probe} has {human_size(free)} free; "
            "free some space or choose another --local-dir / --cache-dir",
            EXIT_FINDINGS,
        )


@contextmanager
def _hub_endpoint(url: str) -> Iterator[None]:
    """Make ``url`` huggingface_hub's default endpoint for a block.

    ``endpoint=`` is passed to every call, but huggingface_hub also reaches
    its import-time ``HF_ENDPOINT`` on its own (e.g. for the user-agent's
    registry of coding agents); with a mirror that address may be unreachable,
    or not the one the user chose.
    """
    from huggingface_hub import constants

    # The file URL template is built from the endpoint at import too: keep both in step.
    names = [n for n in ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE") if hasattr(constants, n)]
    before = {n: getattr(constants, n) for n in names}
    constants.ENDPOINT = url
    if "HUGGINGFACE_CO_URL_TEMPLATE" in before:
        constants.HUGGINGFACE_CO_URL_TEMPLATE = url + "/{repo_id}/resolve/{revision}/{filename}"
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(constants, name, value)


@contextmanager
def _checked_file_metadata(commit: str, at: str) -> Iterator[None]:
    """Check what the hub says of each file before huggingface_hub uses it in a path (a hostile hub could write anywhere).

    huggingface_hub names cache files after the ``ETag`` and ``X-Repo-Commit``
    headers as sent: an ETag of ``../../x`` would put a file outside the cache.
    For a block, every file's metadata must carry a plain ETag and the commit
    pinned for the download, or the download stops.
    """
    from huggingface_hub import file_download

    real = file_download.get_hf_file_metadata

    def checked(*args: object, **kwargs: object) -> object:
        meta = real(*args, **kwargs)
        etag, sent = getattr(meta, "etag", None), getattr(meta, "commit_hash", None)
        if etag is not None and (not _ETAG.fullmatch(etag) or ".." in etag):
            raise FmtkitError(f"{at} sent a file ETag that is not a plain name ({etag[:80]!r}); refusing to write it", EXIT_FINDINGS)
        if sent is not None and sent != commit:
            raise FmtkitError(f"{at} sent a file of commit {sent[:80]!r}, not of the commit {commit} asked for; refusing to write it", EXIT_FINDINGS)
        return meta

    file_download.get_hf_file_metadata = checked
    try:
        yield
    finally:
        file_download.get_hf_file_metadata = real


@contextmanager
def _progress_bars(show: bool) -> Iterator[None]:
    """Turn huggingface_hub's progress bars off for a block when ``show`` is false."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    turn_off = not show and not are_progress_bars_disabled()
    if turn_off:
        disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            enable_progress_bars()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_network_error(exc: BaseException) -> bool:
    # requests (huggingface_hub < 1.0), httpx or httpx2 (later): match by name
    # rather than import three HTTP libraries.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names & {"ConnectError", "ConnectionError", "ConnectTimeout", "TimeoutException", "Timeout", "ProxyError"}
    ) or isinstance(exc, (ConnectionError, TimeoutError))


def _explain(
    exc: BaseException,
    *,
    repo_id: str,
    revision: str | None,
    endpoint: Endpoint,
    folder: Path | None = None,
) -> FmtkitError | None:
    """A clear :class:`FmtkitError` for a hub, network or disk failure; None if it is none of these."""
    from huggingface_hub import errors as hf_errors

    at = f"{endpoint.url} (from {endpoint.origin})"
    for err in _chain(exc):
        if isinstance(err, FmtkitError):
            return err
        if isinstance(err, hf_errors.OfflineModeIsEnabled):
            return FmtkitError("downloads are disabled: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set", EXIT_USAGE)
        if isinstance(err, hf_errors.RevisionNotFoundError):
            return FmtkitError(f"revision {revision!r} not found in {repo_id} on {at}", EXIT_USAGE)
        if isinstance(err, hf_errors.GatedRepoError):
            return _gated(repo_id, at)
        if isinstance(err, hf_errors.HfHubHTTPError) and err.response is not None:
            status = err.response.status_code
            # The hub answers 401 for a missing repository too, with RepoNotFound.
            if isinstance(err, hf_errors.RepositoryNotFoundError) or status == 404:
                return FmtkitError(
                    f"repository not found: {repo_id} on {at}. Check the name (owner/name); "
                    f"a private repository needs a token: {TOKEN_HINT}",
                    EXIT_USAGE,
                )
            if status in (401, 403):
                return _gated(repo_id, at)
            return FmtkitError(
                f"{at} answered HTTP {status} for {repo_id}; try again later, or {MIRROR_HINT}", EXIT_FINDINGS
            )
        if type(err).__name__ == "FileMetadataError":
            return FmtkitError(f"{at} does not answer like a Hugging Face hub ({err}); check the endpoint", EXIT_FINDINGS)
        if _is_network_error(err):
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return FmtkitError(f"cannot reach {at}: {reason}. Check the network; {MIRROR_HINT}", EXIT_FINDINGS)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            where = f" in {folder}" if folder is not None else ""
            return FmtkitError(
                f"the disk is full{where}: free some space or choose another --local-dir / --cache-dir, "
                "then run the same command again to finish (complete files are kept)",
                EXIT_FINDINGS,
            )
        if isinstance(err, OSError) and "Consistency check failed" in str(err):
            return FmtkitError(
                f"a file of {repo_id} arrived incomplete from {at}; run the same command again to finish", EXIT_FINDINGS
            )
        if isinstance(err, PermissionError):
            return FmtkitError(f"cannot write the download: {err}", EXIT_FINDINGS)
    return None


def _gated(repo_id: str, at: str) -> FmtkitError:
    return FmtkitError(
        f"{repo_id} is gated or private on {at}: accept its conditions on the model page, then {TOKEN_HINT}",
        EXIT_USAGE,
    )


def _download_modelscope(
    repo_id: str,
    local_dir: str | Path | None,
    cache_dir: str | Path | None,
    revision: str | None,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    on_start: Callable[[Download], None] | None,
) -> Download:
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise FmtkitError(
            "--source modelscope needs the modelscope package, which fmtkit does not install: pip install modelscope",
            EXIT_USAGE,
        ) from None
    domain = os.environ.get("MODELSCOPE_DOMAIN")
    endpoint = Endpoint(domain, "MODELSCOPE_DOMAIN") if domain else Endpoint(DEFAULT_MODELSCOPE_DOMAIN, "default")
    if cache_dir:
        cache = CacheDir(Path(cache_dir).expanduser(), "--cache-dir")
    elif os.environ.get("MODELSCOPE_CACHE"):
        cache = CacheDir(Path(os.environ["MODELSCOPE_CACHE"]).expanduser(), "MODELSCOPE_CACHE")
    else:
        cache = CacheDir(Path("~/.cache/modelscope/hub").expanduser(), "default")
    folder = Path(local_dir).expanduser() if local_dir is not None else cache.path
    plan = Download(repo_id=repo_id, source="modelscope", endpoint=endpoint, folder=folder, cache=cache, revision=revision)
    if on_start is not None:
        on_start(plan)
    kwargs: dict[str, object] = {"cache_dir": str(cache.path)}
    if local_dir is not None:
        kwargs["local_dir"] = str(folder)
    if revision:
        kwargs["revision"] = revision
    if include:
        kwargs["allow_patterns"] = list(include)
    if exclude:
        kwargs["ignore_patterns"] = list(exclude)
    try:
        path = snapshot_download(repo_id, **kwargs)
    except TypeError as exc:
        raise FmtkitError(
            f"this modelscope version does not take these options ({exc}); upgrade it: pip install -U modelscope"
        ) from None
    except Exception as exc:  # noqa: BLE001 - ModelScope's errors are not importable reliably across versions
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise FmtkitError(
                f"the disk is full in {folder}: free some space, then run the same command again", EXIT_FINDINGS
            ) from None
        names = {cls.__name__ for cls in type(exc).__mro__}
        code = EXIT_USAGE if names & {"NotExistError", "InvalidParameter", "FileNotFoundError"} else EXIT_FINDINGS
        raise FmtkitError(f"ModelScope download of {repo_id} failed: {exc}", code) from None
    plan.folder = Path(path)
    return plan


def human_size(n: int) -> str:
    """A byte count for people.

    >>> human_size(512), human_size(1536), human_size(3 * 1024**3)
    ('512 B', '1.5 KiB', '3.0 GiB')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
