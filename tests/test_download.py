"""``fmtkit download`` against a stand-in hub served on 127.0.0.1 by the test itself.

The stand-in implements only what ``huggingface_hub.snapshot_download`` asks
for: the model description ``/api/models/{repo}[/revision/{rev}]``, the file
listing ``/api/models/{repo}/tree/{rev}`` and ``HEAD``/``GET``
``/{repo}/resolve/{rev}/{file}`` with the headers a hub sends (``ETag``,
``X-Repo-Commit``, ``Content-Length``, ``Range`` support). Errors carry the
hub's ``X-Error-Code`` unless the test asks for a bare status, as some mirrors
answer. Nothing leaves the machine: every URL is 127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

huggingface_hub = pytest.importorskip("huggingface_hub")

from fmtkit.cli import main  # noqa: E402
from fmtkit.errors import FmtkitError  # noqa: E402
from fmtkit.models.download import Download, download_model  # noqa: E402

REPO = "tiny-org/tiny-chat"
TOKEN_SENTINEL = "hf_must_not_be_sent"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str
    status: int | None = None  # answer every request of this repository with this status
    error_code: str | None = None  # and this X-Error-Code (None: a bare status, as some mirrors answer)
    # hostile modes: what a malicious hub sends instead of the truth
    sha: str | None = None  # the commit id in the repository description
    etag: str | None = None  # the ETag of every file
    file_commit: str | None = None  # the X-Repo-Commit of every file
    linked_etag: str | None = None  # redirect file requests to another host (/cdn/), naming this X-Linked-Etag (as the hub does for LFS)


@dataclass
class StandInHub:
    """A hub on 127.0.0.1 with an ephemeral port, serving :attr:`repos` from memory."""

    repos: dict[str, Repo] = field(default_factory=dict)
    truncate_once: set[str] = field(default_factory=set)  # files whose first GET is cut in the middle
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_dataset(self, repo_id: str, files: dict[str, bytes], **kwargs: object) -> Repo:
        """A dataset repository (``hf://datasets/REPO_ID``)."""
        return self.add("datasets/" + repo_id, files, **kwargs)

    def add(self, repo_id: str, files: dict[str, bytes], **kwargs: object) -> Repo:
        commit = hashlib.sha1(repo_id.encode() + b"".join(files[name] for name in sorted(files))).hexdigest()
        self.repos[repo_id] = Repo(files=files, commit=commit, **kwargs)  # type: ignore[arg-type]
        return self.repos[repo_id]

    def gets(self, filename: str) -> list[Request]:
        """The GET requests for one file of a repository."""
        return [r for r in self.requests if r.method == "GET" and "/resolve/" in r.path and r.path.endswith("/" + filename)]


_DATASET_API = re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+)|/tree/(?P<tree>[^/]+)(?P<sub>/.*)?)?/?$")
_DATASET_RESOLVE = re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+)|/tree/(?P<tree>[^/]+))?/?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def _handler(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with hub.lock:
                hub.requests.append(Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
            if m := _DATASET_API.match(path):  # a dataset repository (hf://datasets/...): its description and tree
                repo = self._repo("datasets/" + m["repo"], m["rev"] or m["tree"] or "main")
                if repo is None:
                    return
                if m["tree"]:
                    query = urlsplit(self.path).query
                    return self._send(200, json.dumps(_tree(repo, (m["sub"] or "").strip("/"), "recursive=true" in query.lower())).encode(), body)
                info = {"id": m["repo"], "sha": repo.commit, "private": False, "gated": False,
                        "siblings": [{"rfilename": name} for name in sorted(repo.files)]}  # fmt: skip
                return self._send(200, json.dumps(info).encode(), body)
            if m := _DATASET_RESOLVE.match(path):
                repo = self._repo("datasets/" + m["repo"], m["rev"])
                if repo is None:
                    return
                data = repo.files.get(m["file"])
                if data is None:
                    return self._send(404, b"", body, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
                return self._file(repo, m["file"], data, body)
            if m := _API.match(path):
                repo = self._repo(m["repo"], m["rev"] or m["tree"] or "main")
                if repo is None:
                    return
                if m["tree"]:
                    listing = [{"type": "file", "path": name, "size": len(data), "oid": _blob_id(data)}
                               for name, data in sorted(repo.files.items())]  # fmt: skip
                    return self._send(200, json.dumps(listing).encode(), body)
                siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(repo.files.items())]
                info = {"id": m["repo"], "modelId": m["repo"], "sha": repo.sha or repo.commit, "private": False,
                        "gated": False, "siblings": siblings}  # fmt: skip
                return self._send(200, json.dumps(info).encode(), body)
            if m := _RESOLVE.match(path):
                repo = self._repo(m["repo"], m["rev"])
                if repo is None:
                    return
                data = repo.files.get(m["file"])
                if data is None:
                    return self._send(404, b"", body, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
                if repo.linked_etag is not None:
                    return self._send(302, b"", body, {"Location": f"{hub.url.replace('127.0.0.1', 'localhost')}/cdn/{m['repo']}/{m['file']}", "X-Repo-Commit": repo.commit,
                                                       "X-Linked-Etag": f'"{repo.linked_etag}"', "X-Linked-Size": str(len(data))})  # fmt: skip
                return self._file(repo, m["file"], data, body)
            if path.startswith("/cdn/"):
                repo_id, _, name = path[len("/cdn/"):].rpartition("/")
                repo = hub.repos.get(repo_id)
                if repo is not None and name in repo.files:
                    return self._file(repo, name, repo.files[name], body)
            self._send(404, b"not a hub route", body)

        def _repo(self, repo_id: str, revision: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._send(404, b'{"error":"Repository not found"}', self.command == "GET",
                           {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})  # fmt: skip
                return None
            if repo.status is not None:
                headers = {"X-Error-Code": repo.error_code} if repo.error_code else {}
                self._send(repo.status, b'{"error":"Access denied"}', self.command == "GET", headers)
                return None
            if revision not in ("main", repo.commit):
                self._send(404, b'{"error":"Invalid rev id"}', self.command == "GET",
                           {"X-Error-Code": "RevisionNotFound"})  # fmt: skip
                return None
            return repo

        def _file(self, repo: Repo, name: str, data: bytes, body: bool) -> None:
            headers = {"ETag": f'"{repo.etag or hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": repo.file_commit or repo.commit,
                       "Accept-Ranges": "bytes"}  # fmt: skip
            start, end, status = 0, len(data), 200
            if body and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))):
                start, end, status = int(m[1]), min(len(data), int(m[2]) + 1 if m[2] else len(data)), 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
            chunk = data[start:end]
            if not body:
                return self._send(200, data, False, headers)
            with hub.lock:
                cut = name in hub.truncate_once
                hub.truncate_once.discard(name)
            if cut:
                # Promise the whole file, send half, hang up: a dropped connection.
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(status, chunk, True, headers)

        def _send(self, status: int, payload: bytes, body: bool, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if payload[:1] in (b"{", b"["):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

    return Handler


def _tree(repo: Repo, sub: str, recursive: bool) -> list[dict[str, object]]:
    """The entries under ``sub`` of a repository (all below it when ``recursive``), folders included, as the hub lists them."""
    prefix = sub + "/" if sub else ""
    out: dict[str, dict[str, object]] = {}
    for name, data in sorted(repo.files.items()):
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix) :].split("/")
        for depth in range(1, len(parts)):
            folder = prefix + "/".join(parts[:depth])
            if recursive or depth == 1:
                out.setdefault(folder, {"type": "directory", "path": folder, "oid": _blob_id(folder.encode()), "size": 0})
        if recursive or len(parts) == 1:
            out[name] = {"type": "file", "path": name, "size": len(data), "oid": _blob_id(data)}
    return list(out.values())


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test of this module whose process looks up a host other than 127.0.0.1."""
    attempts: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host not in ("127.0.0.1", b"127.0.0.1", "localhost"):
            attempts.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"tests may only reach 127.0.0.1, not {host}")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"tried to reach {attempts}"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StandInHub]:
    """A running stand-in hub; stopped, and huggingface_hub's shared HTTP client closed, at the end."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # never the user's cache

    # huggingface_hub read these when it was imported: set its values, not the environment.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # another test module may run offline
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setenv("HF_TOKEN", TOKEN_SENTINEL)  # must never reach the server
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    huggingface_hub.close_session()

    state = StandInHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        huggingface_hub.close_session()
    for request in state.requests:
        assert "authorization" not in request.headers, f"a token was sent with {request.method} {request.path}"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, bytes]:
    """The files of the tiny test model, by repository path."""
    folder = Path(request.getfixturevalue("tiny_model"))
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    assert "config.json" in files and any(name.endswith(".safetensors") for name in files)
    return files


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _local(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and ".cache" not in p.relative_to(path).parts}  # fmt: skip


# -- downloads ---------------------------------------------------------------


def test_full_download_to_a_local_dir(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path) -> None:
    hub.add(REPO, model_files)
    seen: list[Download] = []
    result = download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "model", cache_dir=tmp_path / "cache",
                            token=False, progress=False, on_start=seen.append)  # fmt: skip
    assert result.folder == (tmp_path / "model").resolve()
    assert _local(result.folder) == model_files
    assert seen and seen[0].files == sorted(model_files)
    assert seen[0].total_bytes == seen[0].missing_bytes == sum(map(len, model_files.values()))
    assert result.commit == hub.repos[REPO].commit and result.endpoint.origin == "--endpoint"


def test_cli_reports_endpoint_and_folder(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hub.add(REPO, model_files)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    code, out, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--no-progress", "--no-token")
    assert code == 0, err
    snapshot = tmp_path / "hf" / "hub" / "models--tiny-org--tiny-chat" / "snapshots" / hub.repos[REPO].commit
    assert out.strip() == str(snapshot)
    assert f"endpoint: {hub.url} (from --endpoint)" in err
    assert f"cache:    {tmp_path / 'hf' / 'hub'} (from HF_HOME)" in err
    assert _local(snapshot) == model_files


def test_endpoint_option_wins_over_hf_endpoint(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, closed_port_url: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # huggingface_hub is already imported: --endpoint must still be the address used.
    hub.add(REPO, model_files)
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url)
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--local-dir", str(tmp_path / "m"),
                           "--cache-dir", str(tmp_path / "c"), "--no-progress", "--no-token")  # fmt: skip
    assert code == 0, err
    assert _local(tmp_path / "m") == model_files


def test_hf_endpoint_and_hf_home_in_a_fresh_process(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path) -> None:
    hub.add(REPO, model_files)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_")) and "proxy" not in k.lower()}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", "from fmtkit.cli import main; main()", "download", REPO, "--include", "*.json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"endpoint: {hub.url} (from HF_ENDPOINT)" in proc.stderr
    assert "(from HF_HOME)" in proc.stderr
    snapshot = Path(proc.stdout.strip())
    assert snapshot.is_relative_to(tmp_path / "hf" / "hub")
    assert _local(snapshot) == {k: v for k, v in model_files.items() if k.endswith(".json")}


def test_a_file_cut_short_is_resumed(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # huggingface_hub writes what it received in chunks of 10 MB and resumes from
    # the last whole chunk; smaller chunks let the tiny model's weights show it.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024, raising=False)
    weights = next(name for name in model_files if name.endswith(".safetensors"))
    size = len(model_files[weights])
    hub.add(REPO, model_files)
    hub.truncate_once.add(weights)
    result = download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "model", cache_dir=tmp_path / "cache",
                            token=False, progress=False)  # fmt: skip
    assert (result.folder / weights).read_bytes() == model_files[weights]
    first, second = hub.gets(weights)  # exactly two: the one cut at half, then the rest
    assert "range" not in first.headers
    start = int(re.fullmatch(r"bytes=(\d+)-", second.headers["range"])[1])  # type: ignore[index]
    assert 0 < start <= size // 2, "the second request must continue, not start again"
    assert not list((result.folder / ".cache").rglob("*.incomplete"))


def test_a_second_run_fetches_only_what_is_missing(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path
) -> None:
    weights = next(name for name in model_files if name.endswith(".safetensors"))
    hub.add(REPO, model_files)
    kwargs = dict(endpoint=hub.url, local_dir=tmp_path / "model", cache_dir=tmp_path / "cache", token=False, progress=False)
    download_model(REPO, **kwargs)  # type: ignore[arg-type]
    (tmp_path / "model" / weights).unlink()  # as after an interrupted run: complete files, one missing
    hub.requests.clear()
    seen: list[Download] = []
    download_model(REPO, **kwargs, on_start=seen.append)  # type: ignore[arg-type]
    assert seen[0].missing_bytes == len(model_files[weights])
    assert [r.path.rsplit("/", 1)[-1] for r in hub.requests if r.method == "GET" and "/resolve/" in r.path] == [weights]
    assert _local(tmp_path / "model") == model_files


def test_include_and_exclude(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path) -> None:
    hub.add(REPO, model_files)
    result = download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "m", cache_dir=tmp_path / "c", token=False,
                            include=["*.json"], exclude=["tokenizer*"], progress=False)  # fmt: skip
    wanted = {k: v for k, v in model_files.items() if k.endswith(".json") and not k.startswith("tokenizer")}
    assert wanted and "config.json" in wanted
    assert result.files == sorted(wanted)
    assert _local(result.folder) == wanted
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub.requests if "/resolve/" in r.path}
    assert fetched == set(wanted)


def test_patterns_matching_nothing(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add(REPO, model_files)
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--include", "*.gguf",
                           "--local-dir", str(tmp_path / "m"), "--no-token")  # fmt: skip
    assert code == 2
    assert "no file of tiny-org/tiny-chat matches --include *.gguf" in err
    assert not (tmp_path / "m").exists()


# -- errors: one clear line, no traceback ------------------------------------


def _assert_clean(err: str) -> None:
    """One ``error:`` line at the end, and no traceback."""
    assert err.splitlines()[-1].startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("bare", [False, True], ids=["hub", "mirror"])
def test_unknown_repository(
    hub: StandInHub, bare: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if bare:  # a mirror that answers a bare 404, without the hub's X-Error-Code
        hub.add("nobody/nothing", {}, status=404)
    code, _, err = run_cli(capsys, "download", "nobody/nothing", "--endpoint", hub.url,
                           "--local-dir", str(tmp_path / "m"), "--no-token")  # fmt: skip
    assert code == 2
    _assert_clean(err)
    assert f"repository not found: nobody/nothing on {hub.url}" in err


def test_unknown_revision(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add(REPO, model_files)
    code, _, err = run_cli(capsys, "download", REPO, "--revision", "v9", "--endpoint", hub.url,
                           "--local-dir", str(tmp_path / "m"), "--no-token")  # fmt: skip
    assert code == 2
    _assert_clean(err)
    assert "revision 'v9' not found in tiny-org/tiny-chat" in err


@pytest.mark.parametrize(("status", "error_code"), [(401, "GatedRepo"), (403, "GatedRepo"), (403, None)])
def test_gated_repository(
    hub: StandInHub, status: int, error_code: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add("meta/gated", {"config.json": b"{}"}, status=status, error_code=error_code)
    code, _, err = run_cli(capsys, "download", "meta/gated", "--endpoint", hub.url,
                           "--local-dir", str(tmp_path / "m"), "--no-token")  # fmt: skip
    assert code == 2
    _assert_clean(err)
    assert "meta/gated is gated or private" in err and "HF_TOKEN" in err


def test_unreachable_endpoint(closed_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")  # an older copy must not be passed off as a download
    code, out, err = run_cli(capsys, "download", REPO, "--endpoint", closed_port_url,
                             "--local-dir", str(tmp_path / "m"), "--no-token")  # fmt: skip
    assert code == 1
    _assert_clean(err)
    assert f"cannot reach {closed_port_url} (from --endpoint)" in err and "--endpoint" in err
    assert out == ""


def test_disk_full_during_download(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hub.add(REPO, model_files)

    def no_space(*args: object, **kwargs: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_space)
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--local-dir", str(tmp_path / "m"), "--no-token")
    assert code == 1
    _assert_clean(err)
    assert "the disk is full" in err and "run the same command again" in err


def test_not_enough_space_is_said_before_fetching(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import shutil

    import fmtkit.models.download as module

    hub.add(REPO, model_files)
    monkeypatch.setattr(module.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10))
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--local-dir", str(tmp_path / "m"), "--no-token")
    assert code == 1
    _assert_clean(err)
    assert "not enough disk space" in err
    assert not [r for r in hub.requests if "/resolve/" in r.path]


def test_offline_mode_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    code, _, err = run_cli(capsys, "download", REPO, "--local-dir", str(tmp_path / "m"))
    assert code == 2
    _assert_clean(err)
    assert "HF_HUB_OFFLINE" in err


def test_bad_endpoint_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", "hf-mirror.com")
    assert code == 2
    assert "http:// or https://" in err


# -- ModelScope: optional ------------------------------------------------------


def test_modelscope_missing_is_explained(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # makes `import modelscope` fail
    code, _, err = run_cli(capsys, "download", "qwen/Qwen3-0.6B", "--source", "modelscope")
    assert code == 2
    _assert_clean(err)
    assert "pip install modelscope" in err


def test_modelscope_is_used_when_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    calls: list[tuple[str, dict[str, object]]] = []

    def snapshot_download(model_id: str, **kwargs: object) -> str:
        calls.append((model_id, kwargs))
        return str(kwargs["local_dir"])

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    code, out, err = run_cli(capsys, "download", "qwen/Qwen3-0.6B", "--source", "modelscope", "--local-dir",
                             str(tmp_path / "m"), "--include", "*.json", "--exclude", "*.bin")  # fmt: skip
    assert code == 0, err
    assert out.strip() == str(tmp_path / "m")
    assert calls == [("qwen/Qwen3-0.6B", {"cache_dir": calls[0][1]["cache_dir"], "local_dir": str(tmp_path / "m"),
                                          "allow_patterns": ["*.json"], "ignore_patterns": ["*.bin"]})]  # fmt: skip
    assert "endpoint: www.modelscope.cn (from default)" in err


def test_library_raises_fmtkit_errors(hub: StandInHub, tmp_path: Path) -> None:
    with pytest.raises(FmtkitError) as caught:
        download_model("nobody/nothing", endpoint=hub.url, local_dir=tmp_path / "m", token=False)
    assert caught.value.exit_code == 2


def test_only_the_chosen_endpoint_is_contacted(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[str],
) -> None:  # fmt: skip
    from huggingface_hub import constants

    # With telemetry on, huggingface_hub also asks its import-time endpoint
    # (huggingface.co) for a registry: that must go to the chosen hub instead.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"), raising=False)
    hub.add(REPO, model_files)
    download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "m", cache_dir=tmp_path / "c", token=False,
                   include=["config.json"], progress=False)  # fmt: skip
    assert loopback_only == []
    assert {r.path for r in hub.requests} - {f"/api/models/{REPO}", f"/api/models/{REPO}/revision/main"} <= {
        "/api/agent-harnesses", f"/api/models/{REPO}/tree/{hub.repos[REPO].commit}",
        f"/{REPO}/resolve/{hub.repos[REPO].commit}/config.json",
    }  # fmt: skip


# -- a hostile hub, and ids or endpoints that are not what they say ------------


def _written(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("mode", "words"), [
    ({"sha": "../../../victim/dataset_info"}, "malformed commit id"),
    ({"etag": "../../../escape"}, "ETag that is not a plain name"),
    ({"file_commit": "../../../escape"}, "not of the commit"),
    ({"linked_etag": "../../../escape"}, "ETag that is not a plain name"),
    ({"files": {"../escape.json": b"{}", "config.json": b"{}"}}, "outside the download folder"),
])  # fmt: skip
@pytest.mark.parametrize("local", [True, False], ids=["local-dir", "cache"])
def test_a_hostile_hub_cannot_write_outside_the_download_folder(
    hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    mode: dict, words: str, local: bool,
) -> None:  # fmt: skip
    mode = dict(mode)
    files = mode.pop("files", None) or {"config.json": model_files["config.json"]}
    hub.add(REPO, files, **mode)
    deep = tmp_path / "a" / "b"
    where = ["--local-dir", str(deep / "m")] if local else []
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--cache-dir", str(deep / "cache"), *where, "--no-token")
    assert code == 1, err
    _assert_clean(err)
    assert words in err
    outside = {name for name in _written(tmp_path) if not name.startswith(("a/b/m/", "a/b/cache/"))}
    assert outside == set() and not any("escape" in name or "victim" in name for name in _written(tmp_path))


def test_a_redirect_to_a_cdn_with_a_plain_linked_etag_downloads(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path) -> None:
    etag = hashlib.sha256(model_files["config.json"]).hexdigest()
    hub.add(REPO, {"config.json": model_files["config.json"]}, linked_etag=etag)
    result = download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "m", cache_dir=tmp_path / "c", token=False, progress=False)
    assert (result.folder / "config.json").read_bytes() == model_files["config.json"]
    assert any(r.path.startswith("/cdn/") for r in hub.requests)


def test_files_come_from_the_commit_the_description_names(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path) -> None:
    hub.add(REPO, {"config.json": model_files["config.json"]})
    download_model(REPO, endpoint=hub.url, local_dir=tmp_path / "m", cache_dir=tmp_path / "c", token=False, progress=False)
    resolves = [r.path for r in hub.requests if "/resolve/" in r.path]
    assert resolves and all(f"/resolve/{hub.repos[REPO].commit}/" in p for p in resolves)


@pytest.mark.parametrize("repo_id", ["../x", "", "a/b/c", "a/..", "/abs", "a b/c", "x/../../etc"])
def test_a_repo_id_that_is_not_owner_name_is_refused(hub: StandInHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], repo_id: str) -> None:
    code, _, err = run_cli(capsys, "download", repo_id, "--endpoint", hub.url, "--local-dir", str(tmp_path / "m"), "--no-token")
    assert code == 2, err
    _assert_clean(err)
    assert "is not a repository id" in err
    assert hub.requests == [] and not (tmp_path / "m").exists()


@pytest.mark.parametrize("url", ["http://", "https://host:notaport", "http://[::1", "http://a b.com", "https://h.com/?x=1", "http://h.com\x1b[2J"])
def test_a_malformed_endpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", url, "--local-dir", str(tmp_path / "m"))
    assert code == 2, err
    _assert_clean(err)
    assert "URL" in err and "\x1b" not in err  # shown escaped, never sent to the terminal


def test_a_local_dir_on_no_disk_is_said_plainly(hub: StandInHub, model_files: dict[str, bytes], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    hub.add(REPO, model_files)
    code, _, err = run_cli(capsys, "download", REPO, "--endpoint", hub.url, "--local-dir", "/proc/fmtkit-model", "--no-token")
    assert code == 2, err
    _assert_clean(err)
    assert "not on a disk" in err and "0 B" not in err


# -- validate --remote: a dataset repository of several shards on the stand-in hub --------------------

SHARDS_REPO = "tiny-org/chat-shards"


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """huggingface_hub's endpoint (what HF_ENDPOINT sets, read when it was imported)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture
def shards_hub(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[StandInHub, Path]:
    """A dataset repository: three train shards with defects in each and a test shard under data/; the same files in a local folder."""
    from test_validate_cli import defect_file

    local = tmp_path / "local-shards"
    local.mkdir()
    for k in range(3):
        defect_file(local / f"train-{k:05d}-of-00003.jsonl", 30_000, seed=k)
    defect_file(local / "test-00000-of-00001.jsonl", 10_000, seed=9)
    hub.add_dataset(SHARDS_REPO, {f"data/{p.name}": p.read_bytes() for p in local.iterdir()} | {"README.md": b"# shards\n"})
    _point_at(monkeypatch, hub.url)
    return hub, local


def _validate_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, "validate", *args, "--output-format", "json")
    assert "Traceback" not in err
    return code, (json.loads(out) if out.strip() else {}), err


def test_remote_folder_of_shards_reports_what_the_local_copy_reports(shards_hub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from fmtkit import remote

    hub, local = shards_hub
    code, there, _ = _validate_json(capsys, f"hf://datasets/{SHARDS_REPO}/data", "--remote")
    _, here, _ = _validate_json(capsys, str(local))
    assert code == 1 and there["summary"]["root"] == f"hf://datasets/{SHARDS_REPO}/data"
    def found(report: dict) -> list[tuple]:
        return [(f["file"], f["line"], f["column"], f["record"], f["code"], f["message"], f["pointer"]) for f in report["findings"]]

    assert found(there) == found(here) and there["files"] == here["files"]  # columns included: located in the hub's files
    assert len({f["file"] for f in there["findings"] if f["severity"] == "error"}) == 4  # defects in every shard
    ranges = [r.headers.get("range") for r in hub.gets("train-00001-of-00003.jsonl")]
    assert ranges == [f"bytes=0-{remote.HEAD - 1}"]  # a shard smaller than the head: one request; checked and located from there


def test_hub_entry_is_read_with_remote_honouring_folder_and_split(shards_hub, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hub, _ = shards_hub
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset_info.json").write_text(json.dumps({
        "chat": {"hf_hub_url": SHARDS_REPO, "folder": "data", "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}},
        "chat_test": {"hf_hub_url": SHARDS_REPO, "folder": "data", "split": "test", "formatting": "sharegpt"},
        "configured": {"hf_hub_url": SHARDS_REPO, "subset": "small", "formatting": "sharegpt"},
    }), encoding="utf-8")  # fmt: skip
    code, offline, _ = _validate_json(capsys, str(ds))
    assert code == 0 and offline["summary"]["not_checked"] == ["chat", "chat_test", "configured"] and not hub.requests  # no network without --remote
    code, report, _ = _validate_json(capsys, str(ds), "--remote")
    base = f"hf://datasets/{SHARDS_REPO}/data/"
    assert code == 1 and report["summary"]["not_checked"] == []
    assert [f["entry"] for f in offline["findings"] if f["code"] == "FMT114"] == ["chat", "chat_test", "configured"]
    assert not [f for f in report["findings"] if f["code"] == "FMT114"]  # "not checked locally" no more: --remote checked them
    [missing] = [f for f in report["findings"] if f["entry"] == "configured" and f["severity"] == "error"]  # a README without configs has one: 'default'
    assert (missing["code"], missing["fix"]) == ("FMT112", "set \"subset\" to one of 'default', or remove it"), missing
    assert [(f["file"], f["entry"]) for f in report["files"]] == [(base + f"train-{k:05d}-of-00003.jsonl", "chat") for k in range(3)] + [
        (base + "test-00000-of-00001.jsonl", "chat_test")]  # fmt: skip
    assert {f["file"] for f in report["findings"] if f["code"] == "FMT803"} >= {base + "train-00000-of-00003.jsonl"}
    code, out, err = run_cli(capsys, "validate", str(ds), "--remote")
    assert code == 1 and base + "train-00002-of-00003.jsonl:" in out  # the human report names the hub file


def test_remote_errors_are_clear(shards_hub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, closed_port_url: str) -> None:
    hub, _ = shards_hub
    code, _, err = run_cli(capsys, "validate", "hf://datasets/tiny-org/missing/data", "--remote")
    assert code == 2 and "no such repository, or no access" in err, err
    hub.add_dataset("tiny-org/gated", {"a.jsonl": b"{}\n"}, status=403, error_code="GatedRepo")
    code, _, err = run_cli(capsys, "validate", "hf://datasets/tiny-org/gated/a.jsonl", "--remote")
    assert code == 2 and "no access" in err, err
    code, _, err = run_cli(capsys, "validate", f"hf://datasets/{SHARDS_REPO}/data/nope.jsonl", "--remote")
    assert code == 2 and "no such file or folder" in err, err
    _point_at(monkeypatch, closed_port_url)
    code, _, err = run_cli(capsys, "validate", f"hf://datasets/{SHARDS_REPO}/data", "--remote")
    assert code == 2 and "cannot reach it (no network?)" in err, err
    _assert_clean(err)


def test_checking_starts_before_a_shard_is_downloaded(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A hub file is streamed into the record loop in range requests of one block: no copy, memory at one block, checking from the first blocks."""
    import fmtkit
    from fmtkit import record_loop, remote
    from fmtkit.locate import locate
    from test_validate_cli import defect_file

    big = defect_file(tmp_path / "big.jsonl", 2 * remote.HEAD + 200_000)
    hub.add_dataset("tiny-org/big", {"big.jsonl": big.read_bytes()})
    _point_at(monkeypatch, hub.url)
    block = 64 << 10
    monkeypatch.setattr(remote, "BLOCK", block)
    monkeypatch.setattr(record_loop, "PROGRESS_EVERY", 100)
    requested_when_checking: list[int] = []
    report = fmtkit.validate("hf://datasets/tiny-org/big/big.jsonl", remote=True, progress=lambda rel, n: requested_when_checking.append(len(hub.gets("big.jsonl"))))
    ranges = [re.fullmatch(r"bytes=(\d+)-(\d+)", r.headers["range"]) for r in hub.gets("big.jsonl")]  # every GET asks for a range
    assert (int(ranges[0][1]), int(ranges[0][2])) == (0, remote.HEAD - 1)  # the head, which the form is detected from
    assert all(int(m[2]) - int(m[1]) + 1 <= block for m in ranges[1:])  # then never more than one block at once
    assert len(ranges) > (big.stat().st_size - remote.HEAD) // block
    assert requested_when_checking[0] == 1  # 100 records were checked when only the head had been asked for
    assert requested_when_checking[len(requested_when_checking) // 2] < len(ranges) // 2  # and the blocks come as the check goes
    local = fmtkit.validate(big)
    locate(local.root, local.findings)
    assert report.has_errors and [(f.line, f.column, f.code, f.message) for f in report.findings] == [(f.line, f.column, f.code, f.message) for f in local.findings]


def test_convert_streams_a_hub_file_as_it_converts(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """convert --remote reads a hub file as validate --remote does: the head, then range requests of one block
    as the conversion goes (no copy first); the output and report are those of the local file."""
    import fmtkit
    from fmtkit import remote
    from fmtkit.conversion.engine import Converter
    from test_validate_cli import defect_file

    big = defect_file(tmp_path / "big.jsonl", 2 * remote.HEAD + 200_000)
    hub.add_dataset("tiny-org/big", {"big.jsonl": big.read_bytes()})
    _point_at(monkeypatch, hub.url)
    block = 64 << 10
    monkeypatch.setattr(remote, "BLOCK", block)
    requested_when_converting: list[int] = []
    one = Converter._one

    def counting(self, fno, index, *args):  # the records the general path converts (those with defects, every few dozen)
        if self.template is not None:  # not the first records read to fix the output's columns
            requested_when_converting.append(len(hub.gets("big.jsonl")))
        return one(self, fno, index, *args)

    monkeypatch.setattr(Converter, "_one", counting)
    url = "hf://datasets/tiny-org/big/big.jsonl"
    there = fmtkit.convert(url, "openai", tmp_path / "there.jsonl", remote=True).to_dict()
    ranges = [re.fullmatch(r"bytes=(\d+)-(\d+)", r.headers["range"]) for r in hub.gets("big.jsonl")]  # every GET asks for a range
    assert (int(ranges[0][1]), int(ranges[0][2])) == (0, remote.HEAD - 1)  # the head, which the form is detected from
    assert all(int(m[2]) - int(m[1]) + 1 <= block for m in ranges[1:])  # then never more than one block at once
    assert len(ranges) > (big.stat().st_size - remote.HEAD) // block
    # the first records were converted when only the head had been asked for (and the block that the first 1,000
    # records, read first to fix the output's columns, may reach into); the blocks then come as the conversion goes
    assert requested_when_converting[0] <= 2
    assert requested_when_converting[len(requested_when_converting) // 2] < len(ranges) // 2
    monkeypatch.setattr(Converter, "_one", one)
    here = fmtkit.convert(big, "openai", tmp_path / "here.jsonl").to_dict()
    assert (tmp_path / "there.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    assert there["skipped"] > 0 and there["source"] == url
    drop = ("source", "output", "seconds")
    assert {k: v for k, v in there.items() if k not in drop} == json.loads(json.dumps({k: v for k, v in here.items() if k not in drop}).replace(str(big), url))


def test_convert_and_stats_read_a_hub_file(shards_hub, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hub, local = shards_hub
    url = f"hf://datasets/{SHARDS_REPO}/data/train-00001-of-00003.jsonl"
    code, out, err = run_cli(capsys, "convert", url, "--remote", "--to", "openai", "-o", str(tmp_path / "there.jsonl"), "--output-format", "json")
    code_here, _, _ = run_cli(capsys, "convert", str(local / "train-00001-of-00003.jsonl"), "--to", "openai", "-o", str(tmp_path / "here.jsonl"))
    assert code == code_here == 1 and json.loads(out)["source"] == url, err
    assert (tmp_path / "there.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    code, out, err = run_cli(capsys, "stats", url, "--remote", "--output-format", "json")
    _, here, _ = run_cli(capsys, "stats", str(local / "train-00001-of-00003.jsonl"), "--output-format", "json")
    there = json.loads(out)
    assert code == 0 and list(there["entries"]) == [url] and there["entries"][url]["counts"]["records"] > 0
    assert there["entries"] == json.loads(here.replace(str(local / "train-00001-of-00003.jsonl"), url))["entries"]
    code, _, err = run_cli(capsys, "stats", "hf://datasets/tiny-org/missing/a.jsonl", "--remote")
    assert code == 2 and "no such repository, or no access" in err
    _assert_clean(err)


def test_stats_streams_a_hub_file_as_it_measures(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """stats --remote reads a hub file in range requests of one block while it measures (no copy first); the report is the local file's."""
    from fmtkit import remote
    from fmtkit.stats.progress import ProgressBar
    from test_validate_cli import defect_file

    short = [json.dumps({"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i % 5000}"}]}) + "\n" for i in range(30_000)]
    big = tmp_path / "big.jsonl"  # 30,000 short records (59 batches of 512, 2.7 MB), then defects
    big.write_bytes("".join(short).encode() + defect_file(tmp_path / "defects.jsonl", 200_000).read_bytes())
    hub.add_dataset("tiny-org/big", {"big.jsonl": big.read_bytes()})
    _point_at(monkeypatch, hub.url)
    monkeypatch.setattr(remote, "BLOCK", 64 << 10)
    calls: list[tuple[int, int | None]] = []  # after each batch: the requests for the file so far, and the bar's position in it
    monkeypatch.setattr(ProgressBar, "__call__", lambda self, records: calls.append((len(hub.gets("big.jsonl")), self._position())))
    url = "hf://datasets/tiny-org/big/big.jsonl"
    code, out, err = run_cli(capsys, "stats", url, "--remote", "--jobs", "1", "--output-format", "json")
    requests, seen = len(hub.gets("big.jsonl")), calls[:]  # before the local run adds its own
    _, here, _ = run_cli(capsys, "stats", str(big), "--jobs", "1", "--output-format", "json")
    assert code == 0 and json.loads(out)["entries"] == json.loads(here.replace(str(big), url))["entries"], err
    assert json.loads(out)["entries"][url]["skipped"]["first"][0].startswith(url + ":")  # the broken line, named by its URL
    ranges = [re.fullmatch(r"bytes=(\d+)-(\d+)", r.headers["range"]) for r in hub.gets("big.jsonl")]  # every GET asks for a range
    assert (int(ranges[0][1]), int(ranges[0][2])) == (0, remote.HEAD - 1)  # the head, kept to tell the form
    assert all(int(m[2]) - int(m[1]) + 1 <= 64 << 10 for m in ranges[1:]) and requests > (big.stat().st_size - remote.HEAD) // (64 << 10)
    assert seen[0][0] == 1 and seen[len(seen) // 2][0] < requests * 3 // 4  # measuring started from the head, the blocks came as it went
    positions = [p for _, p in seen]
    assert positions == sorted(positions) and 0 < positions[0] < big.stat().st_size  # the progress bar follows the stream


def test_a_store_failing_mid_file_ends_the_run_clearly(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fmtkit import record_loop, remote
    from test_validate_cli import defect_file

    big = defect_file(tmp_path / "big.jsonl", remote.HEAD + 300_000)
    repo = hub.add_dataset("tiny-org/big", {"big.jsonl": big.read_bytes()})
    _point_at(monkeypatch, hub.url)
    monkeypatch.setattr(remote, "BLOCK", 64 << 10)
    monkeypatch.setattr(record_loop, "PROGRESS_EVERY", 100)

    def refuse_from_now_on(rel: str, n: int) -> None:
        repo.status = 403  # a 5xx would do too, after huggingface_hub's retries (seconds)
    monkeypatch.setattr("fmtkit.commands.validate._progress_hook", lambda output_format: refuse_from_now_on)
    code, out, err = run_cli(capsys, "validate", "hf://datasets/tiny-org/big/big.jsonl", "--remote")
    assert code == 2 and not out and err.startswith("error: hf://datasets/tiny-org/big/big.jsonl: no access"), err
    _assert_clean(err)


def test_columns_of_a_remote_file_are_found_in_the_blocks_that_hold_them(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from fmtkit import remote

    rows = [json.dumps({"conversations": [{"from": "human", "value": f"question {i}"}, {"from": "gpt", "value": f"answer {i}" + " x" * 40}]}) for i in range(30_000)]
    rows[-5] = rows[-5].replace('"from": "gpt"', '"from": "robot"')  # one finding, near the end
    data = ("\n".join(rows) + "\n").encode()
    hub.add_dataset("tiny-org/late", {"late.jsonl": data})
    _point_at(monkeypatch, hub.url)
    block = 64 << 10
    monkeypatch.setattr(remote, "BLOCK", block)
    code, report, _ = _validate_json(capsys, "hf://datasets/tiny-org/late/late.jsonl", "--remote")
    [finding] = [f for f in report["findings"] if f["severity"] == "error"]
    assert code == 1 and finding["line"] == len(rows) - 4 and finding["column"] == rows[-5].index('"robot"') + 1
    streamed = -(-(len(data) - remote.HEAD) // block)  # the blocks past the head, each read once by the check
    assert streamed + 1 <= len(hub.gets("late.jsonl")) <= streamed + 1 + 2  # the head, the blocks, and at most two to find the column


TWO_CONFIGS = """configs:
- config_name: small
  data_files: small/*.jsonl
- config_name: big
  default: true
  data_files:
  - split: train
    path: big/train-*.jsonl
  - split: test
    path: big/test-*.jsonl
"""  # a README's two subsets: one data_files pattern (train), and one pattern per split
CONFIGURED_README = f"---\nlicense: mit\n{TWO_CONFIGS}---\n# Two subsets\n".encode()


def test_hub_entries_with_a_subset_read_the_readme_configs(hub: StandInHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``subset``, ``split`` and no subset resolved through README.md's ``configs`` as ``datasets.load_dataset`` does; a subset or split
    the repository lacks is FMT112 naming what it has; a repository with a loading script is not checked, and says why."""
    from test_validate_cli import defect_file

    local = tmp_path / "repo"
    for rel, seed in (("small/part-0.jsonl", 1), ("small/part-1.jsonl", 2), ("big/train-00000.jsonl", 3), ("big/test-00000.jsonl", 4), ("other/train.jsonl", 5)):
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        defect_file(local / rel, 20_000, seed=seed)
    (local / "README.md").write_bytes(CONFIGURED_README)
    hub.add_dataset("tiny-org/configured", {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()})
    hub.add_dataset("tiny-org/scripted", {"scripted.py": b"import datasets\n", "data/train.jsonl": (local / "small/part-0.jsonl").read_bytes()})
    _point_at(monkeypatch, hub.url)
    sharegpt = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
    entries = {
        "small": {"subset": "small"},  # data_files: one pattern, the train split
        "big_test": {"subset": "big", "split": "test"},  # data_files: one pattern per split
        "default": {},  # no subset: the config marked default
        "folder": {"subset": "small", "folder": "other"},  # a folder replaces the subset's files by its own
        "missing": {"subset": "tiny"},
        "no_split": {"subset": "small", "split": "test"},
    }
    info = {name: {"hf_hub_url": "tiny-org/configured", **e, **sharegpt} for name, e in entries.items()}
    info["scripted"] = {"hf_hub_url": "tiny-org/scripted", **sharegpt}
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    code, report, _ = _validate_json(capsys, str(ds), "--remote")
    base = "hf://datasets/tiny-org/configured/"
    assert code == 1 and [(f["entry"], f["file"]) for f in report["files"]] == [
        ("small", base + "small/part-0.jsonl"), ("small", base + "small/part-1.jsonl"), ("big_test", base + "big/test-00000.jsonl"),
        ("default", base + "big/train-00000.jsonl"), ("folder", base + "other/train.jsonl")]  # fmt: skip
    same_files = {"small": "repo/small", "big_test": "repo/big/test-00000.jsonl", "default": "repo/big/train-00000.jsonl", "folder": "repo/other"}
    shutil.copytree(local, ds / "repo")
    (ds / "dataset_info.json").write_text(json.dumps({name: {"file_name": f, **sharegpt} for name, f in same_files.items()}), encoding="utf-8")
    code_here, here, _ = _validate_json(capsys, str(ds))  # the same files as local entries: the same findings
    def found(r: dict) -> list[tuple]:
        return [(f["entry"], f["file"].replace(base, "repo/"), f["line"], f["code"], f["message"].replace(base, "repo/")) for f in r["findings"] if f["entry"] in same_files and f["code"] != "FMT114"]

    assert found(report) == found(here) and code_here == 1 and len({f[1] for f in found(here) if f[3] == "FMT201"}) == 5
    by_entry = {f["entry"]: f for f in report["findings"] if f["code"] == "FMT112"}
    assert sorted(by_entry) == ["missing", "no_split"]
    assert by_entry["missing"]["message"] == "subset 'tiny' is not a configuration of tiny-org/configured (its README.md configs: 'small', 'big')"
    assert by_entry["missing"]["fix"] == "set \"subset\" to one of 'small', 'big', or remove it"
    assert by_entry["no_split"]["message"] == "split 'test' is not in subset 'small' of tiny-org/configured (its splits: 'train')"
    assert report["summary"]["not_checked"] == ["scripted"]
    [note] = [n for n in report["summary"]["notes"] if n.startswith("entry 'scripted'")]
    assert "has a loading script (scripted.py)" in note and "Dataset scripts are no longer supported" in note
    assert not [r for r in hub.requests if "tiny-org/scripted/resolve" in r.path and "scripted.py" not in r.path]  # none of its data read
    (ds / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    code, out, _ = run_cli(capsys, "validate", str(ds), "--remote", "--entry", "missing")
    assert code == 1 and "subset 'tiny' is not a configuration" in out and "set \"subset\" to one of 'small', 'big'" in out


_CONFIG_PROBE = """
import json, logging, sys
logging.disable(logging.WARNING)
import datasets
from datasets import load_dataset
datasets.disable_progress_bars()
out = []
for path, subset, folder, split in json.loads(sys.argv[1]):
    try:
        rows = load_dataset(path, name=subset, data_dir=folder, split=split, cache_dir=sys.argv[2])
        out.append(sorted(rows["instruction"]))
    except Exception as exc:  # what LLaMA-Factory's loader would stop on
        out.append(type(exc).__name__)
print(json.dumps(out))
"""


def test_subset_resolution_is_what_datasets_load_dataset_reads(tmp_path: Path) -> None:
    """hub_data_files against the real ``datasets`` of the LLaMA-Factory environment, on local folders laid out as repositories
    (``load_dataset`` reads a local folder's README.md configs as a hub repository's): the same files, or a refusal where it fails."""
    from test_llamafactory_real import _clean_env, require_lf_python

    from fmtkit.remote import HubMismatch, hub_configs, hub_data_files

    python = require_lf_python()
    layouts = {
        "configured": (f"""---
{TWO_CONFIGS}- config_name: listed
  data_files:
  - small/a.jsonl
  - big/train-0.jsonl
- config_name: dirred
  data_dir: data
---
""", ["small/a.jsonl", "small/b.jsonl", "big/train-0.jsonl", "big/test-0.jsonl", "data/train-0.jsonl", "data/test-0.jsonl", "other/train.jsonl",
      "other/test.jsonl", "other/data/x.jsonl"]),
        "undecided": ("---\nconfigs:\n- config_name: a\n  data_files: a/*.jsonl\n- config_name: b\n  data_files: b/*.jsonl\n---\n",
                      ["a/x.jsonl", "b/train.jsonl", "b/test.jsonl", "other/test.jsonl"]),
        "plain": ("# no configs\n", ["train-0.jsonl", "test-0.jsonl", "other/train.jsonl", "other/test.jsonl"]),
    }  # fmt: skip
    cases = [(s, f, sp) for s in (None, "small", "big", "listed", "dirred", "nope") for f in (None, "other", "big") for sp in ("train", "test", "train+test")]  # big/data: none
    grid = {"configured": cases, "undecided": [(s, f, sp) for s in (None, "a", "b") for f in (None, "other") for sp in ("train", "test")],
            "plain": [(s, f, sp) for s in (None, "default", "small") for f in (None, "other") for sp in ("train", "test")]}  # fmt: skip
    asked, ours = [], []
    for name, (readme, files) in layouts.items():
        for rel in files:
            (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / rel).write_text(json.dumps({"instruction": rel, "output": "x"}) + "\n", encoding="utf-8")
        (tmp_path / name / "README.md").write_text(readme, encoding="utf-8")
        for subset, folder, split in grid[name]:
            asked.append((str(tmp_path / name), subset, folder, split))
            try:
                ours.append(hub_data_files(files, hub_configs({"README.md": readme}, name), name, subset, folder, split))
            except HubMismatch:
                ours.append("refused")
    done = subprocess.run([str(python), "-c", _CONFIG_PROBE, json.dumps(asked), str(tmp_path / "cache")], capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = ["refused" if isinstance(r, str) else r for r in json.loads(done.stdout.splitlines()[-1])]
    differ = [(a[1:], o, t) for a, o, t in zip(asked, ours, theirs, strict=True) if o != t]
    assert not differ, differ
    assert theirs.count("refused") >= 10 and len(theirs) - theirs.count("refused") >= 15  # both kinds of answer are compared
