"""Fixtures for the weight tests: an isolated GDCLD_ZOO_HOME and shipped folder,
and a small HTTP server on 127.0.0.1 with Range support and request log."""

import http.server
import json
import re
import threading

import pytest

from gdcld_zoo.weights import sources


@pytest.fixture(autouse=True)
def weights_env(tmp_path, monkeypatch):
    """Empty cache, user registry and shipped registry; online; no extra registries."""
    home, shipped = tmp_path / "home", tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "registry.json").write_text('{"weights": []}')
    monkeypatch.setenv(sources.ENV_HOME, str(home))
    monkeypatch.delenv(sources.ENV_REGISTRY, raising=False)
    monkeypatch.delenv(sources.ENV_OFFLINE, raising=False)
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


@pytest.fixture
def http_server():
    """Serves `server.files` ({"/name": bytes}); `server.requests` logs (path, Range).

    Set `server.cut_after = n` to end the next response after n bytes, and
    `server.ranges = False` to ignore Range headers.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests, server.cut_after, server.ranges = {}, [], 0, True
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
