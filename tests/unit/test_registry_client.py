"""RegistryClient against a small in-process HTTP server on loopback: bearer and basic auth
from challenges, blob downloads resumed with ranges after a cut connection, corrupted blobs
refused and not stored, redirects followed without credentials."""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skiff.errors import InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.registry import auth, hosts
from skiff.registry.client import RegistryClient, RegistryUnavailable, Unauthorized
from skiff.store import ContentStore

BLOB = bytes(range(256)) * 4096 * 3        # 3 MiB
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class FakeRegistry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour: dict = {}
    log: list = []

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        b = self.behaviour
        self.log.append((self.path, self.headers.get("Authorization"), self.headers.get("Range")))
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token"):
            if b.get("user") and self.headers.get("Authorization") != auth.basic_header(
                    *b["user"]):
                return self._send(401)
            return self._send(200, json.dumps({"token": "T1", "expires_in": 300}).encode())
        if b.get("auth") == "bearer" and self.headers.get("Authorization") != "Bearer T1":
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}', {
                "WWW-Authenticate": f'Bearer realm="http://{host}/token",service="fake",'
                                    f'scope="repository:a/b:pull"'})
        if b.get("auth") == "basic" and self.headers.get("Authorization") != auth.basic_header(
                *b["user"]):
            return self._send(401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
        if self.path == "/v2/":
            return self._send(200, b"{}")
        if self.path == "/redirected":
            assert self.headers.get("Authorization") is None
            return self._send(200, BLOB)
        if self.path == f"/v2/a/b/blobs/{DIGEST}":
            if b.get("redirect"):
                return self._send(307, b"", {"Location": "/redirected"})
            data = bytearray(BLOB)
            if b.get("corrupt"):
                data[12345] ^= 0xFF
            start = 0
            rng = self.headers.get("Range")
            if rng and not b.get("no_range"):
                start = int(rng.split("=")[1].rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            cut = b.get("cuts", [])
            if cut:
                self.wfile.write(bytes(data[start:start + cut.pop(0)]))
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(bytes(data[start:]))
            return
        if self.path.startswith("/v2/a/b/manifests/") and b.get("flaky"):
            b["flaky"] -= 1
            return self._send(503, b"")
        if self.path.startswith("/v2/a/b/manifests/"):
            return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN",'
                                   b'"message":"manifest unknown"}]}')
        self._send(404)


@pytest.fixture
def registry():
    FakeRegistry.behaviour = {}
    FakeRegistry.log = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", FakeRegistry.behaviour
    finally:
        server.shutdown()
        server.server_close()


def client_for(host, creds=None):
    return RegistryClient(hosts.endpoint_for(host), creds, certs_dir=None, backoff=0.01,
                          timeout=10)


def desc():
    return oci_image.Descriptor(oci_image.OCI_LAYER, DIGEST, len(BLOB))


def test_plain_download(registry, tmp_path):
    host, _ = registry
    store = ContentStore(tmp_path)
    c = client_for(host)
    seen = []
    assert c.fetch_blob("a/b", desc(), store, seen.append) == DIGEST
    assert store.read_bytes(DIGEST) == BLOB and seen[-1] == len(BLOB)
    assert c.scheme() == "http"


def test_resumes_with_ranges(registry, tmp_path):
    host, behaviour = registry
    behaviour["cuts"] = [1_000_000, 500_000]
    store = ContentStore(tmp_path)
    client_for(host).fetch_blob("a/b", desc(), store)
    assert store.read_bytes(DIGEST) == BLOB
    ranges = [r for p, _, r in FakeRegistry.log if "blobs" in p]
    assert ranges == [None, "bytes=1000000-", "bytes=1500000-"]


def test_resumes_without_range_support(registry, tmp_path):
    host, behaviour = registry
    behaviour.update(cuts=[700_000], no_range=True)
    store = ContentStore(tmp_path)
    client_for(host).fetch_blob("a/b", desc(), store)
    assert store.read_bytes(DIGEST) == BLOB


def test_gives_up_after_retries(registry, tmp_path):
    host, behaviour = registry
    behaviour["cuts"] = [1000] * 20
    store = ContentStore(tmp_path)
    c = RegistryClient(hosts.endpoint_for(host), certs_dir=None, retries=2, backoff=0.001)
    with pytest.raises(RegistryUnavailable, match="after 3 attempts"):
        c.fetch_blob("a/b", desc(), store)
    assert list(store.walk()) == [] and store.cleanup_temp() == 0


def test_corrupt_blob_not_stored(registry, tmp_path):
    host, behaviour = registry
    behaviour["corrupt"] = True
    store = ContentStore(tmp_path)
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        client_for(host).fetch_blob("a/b", desc(), store)
    assert list(store.walk()) == [] and store.cleanup_temp() == 0


def test_bearer_token_flow(registry, tmp_path):
    host, behaviour = registry
    behaviour.update(auth="bearer")
    store = ContentStore(tmp_path)
    c = client_for(host)
    c.fetch_blob("a/b", desc(), store)
    tokens = [p for p, _, _ in FakeRegistry.log if p.startswith("/token")]
    assert tokens == ["/token?service=fake&scope=repository%3Aa%2Fb%3Apull"]
    with pytest.raises(NotFound, match=r"manifest for 127.0.0.1:\d+/a/b:nosuch not found: "
                                       r"manifest unknown: manifest unknown"):
        c.get_manifest("a/b", "nosuch")
    assert len([p for p, _, _ in FakeRegistry.log if p.startswith("/token")]) == 1  # cached


def test_bearer_with_credentials(registry):
    host, behaviour = registry
    behaviour.update(auth="bearer", user=("u", "pw"))
    client_for(host, auth.Credentials("u", "pw")).ping()
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        client_for(host, auth.Credentials("u", "wrong")).ping()


def test_basic_auth(registry, tmp_path):
    host, behaviour = registry
    behaviour.update(auth="basic", user=("u", "pw"))
    client_for(host, auth.Credentials("u", "pw")).ping()
    with pytest.raises(Unauthorized):
        client_for(host, auth.Credentials("u", "bad")).ping()
    with pytest.raises(Unauthorized):
        client_for(host).ping()


def test_redirect_drops_authorization(registry, tmp_path):
    host, behaviour = registry
    behaviour.update(redirect=True)
    store = ContentStore(tmp_path)
    client_for(host).fetch_blob("a/b", desc(), store)
    assert store.has(DIGEST)


def test_manifest_requests_retried_on_5xx(registry):
    host, behaviour = registry
    behaviour["flaky"] = 2
    with pytest.raises(NotFound, match="manifest unknown"):   # the third answer
        client_for(host).get_manifest("a/b", "latest")
    assert len([p for p, _, _ in FakeRegistry.log if "manifests" in p]) == 3
    behaviour["flaky"] = 10
    c = RegistryClient(hosts.endpoint_for(host), certs_dir=None, retries=1, backoff=0.001)
    with pytest.raises(RegistryUnavailable, match="503"):
        c.get_manifest("a/b", "latest")


def test_refused_connection_is_not_retried():
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = RegistryClient(hosts.endpoint_for(f"127.0.0.1:{port}"), certs_dir=None, backoff=1)
    start = time.monotonic()
    with pytest.raises(RegistryUnavailable):
        c.get_manifest("a/b", "latest")
    assert time.monotonic() - start < 1
