"""Fixtures for the weight tests: an isolated GDCLD_ZOO_HOME and shipped folder,
a small HTTP server on 127.0.0.1 with Range support and request log, and a
fake Hugging Face hub built on it."""

import hashlib
import http.server
import json
import re
import threading

import pytest

from gdcld_zoo.weights import hub as hub_module
from gdcld_zoo.weights import sources


@pytest.fixture(autouse=True)
def weights_env(tmp_path, monkeypatch):
    """Empty cache, user registry and shipped registry; online; no extra registries;
    a hub endpoint that refuses connections unless a test starts `fake_hub`."""
    home, shipped = tmp_path / "home", tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "registry.json").write_text('{"weights": []}')
    monkeypatch.setenv(sources.ENV_HOME, str(home))
    monkeypatch.delenv(sources.ENV_REGISTRY, raising=False)
    monkeypatch.delenv(sources.ENV_OFFLINE, raising=False)
    monkeypatch.setenv(hub_module.ENV_HF_ENDPOINT, "http://127.0.0.1:9")  # never the real hub
    monkeypatch.setattr(sources, "shipped_weights_dir", lambda: shipped)
    monkeypatch.setattr(sources, "_FETCHED", {})
    return {"home": home, "shipped": shipped}


def write_registry(path, records):
    path.write_text(json.dumps({"weights": records}))
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if server.cut_after:
            # Simulate a dropped connection: promise the whole body, send part of it.
            cut, server.cut_after = server.cut_after, 0
            self.wfile.write(body[start:start + cut])
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


class _HubHandler(_Handler):
    """The hub's `/{repo}/resolve/{revision}/{path}`: a redirect to `/cdn/{sha256}`
    carrying `X-Linked-Etag` and `X-Repo-Commit`, as the hub answers for LFS files."""

    def do_HEAD(self):
        self._resolve(head=True)

    def do_GET(self):
        if not self._resolve(head=False):
            super().do_GET()

    def _resolve(self, head):
        match = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", self.path)
        if match is None:
            return False
        self.server.requests.append((("HEAD " if head else "") + self.path, self.headers.get("Range")))
        key = (match["repo"], match["rev"], match["path"])
        if key not in self.server.hub_files:
            self.send_error(404)
            return True
        sha256, etag = self.server.hub_files[key]
        self.send_response(302)
        self.send_header("Location", f"/cdn/{sha256}")
        self.send_header("X-Linked-Etag", f'"{etag}"')
        self.send_header("X-Repo-Commit", self.server.answer_commit or match["rev"])
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True


def _start(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.files, server.requests, server.cut_after, server.ranges = {}, [], 0, True
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def _stop(server, thread):
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fake_hub(monkeypatch):
    """A hub at `GDCLD_ZOO_HF_ENDPOINT`: `hub.add(repo, revision, path, body, etag=None)`
    serves `body` (declaring `etag`, default its sha256); `hub.answer_commit` makes
    every answer claim that commit; `hub.requests` logs (path, Range)."""
    server, thread = _start(_HubHandler)
    server.hub_files, server.answer_commit = {}, None

    def add(repo, revision, path, body, etag=None):
        sha256 = hashlib.sha256(body).hexdigest()
        server.files[f"/cdn/{sha256}"] = body
        server.hub_files[(repo, revision, path)] = (sha256, etag or sha256)

    server.add = add
    monkeypatch.setenv(hub_module.ENV_HF_ENDPOINT, server.url)
    yield server
    _stop(server, thread)


@pytest.fixture
def http_server():
    """Serves `server.files` ({"/name": bytes}); `server.requests` logs (path, Range).

    Set `server.cut_after = n` to end the next response after n bytes, and
    `server.ranges = False` to ignore Range headers.
    """
    server, thread = _start(_Handler)
    yield server
    _stop(server, thread)
