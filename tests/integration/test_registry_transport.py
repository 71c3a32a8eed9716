"""Transfers against the real registry: a multi-platform index, a connection cut in the middle
of a layer (resumed), a corrupted blob (refused, nothing stored), and TLS with a CA the test
makes. A small proxy of the test's own sits between skiffd and the registry to break things."""

import http.client
import json
import os
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skiff.oci import image as oci_image
from skiff.oci.digest import digest_of
from skiff.registry import hosts
from skiff.registry.client import RegistryClient, RegistryUnavailable
from skiff.store import ContentStore
from tests.integration.test_registry import Registry, _registry, load_as


class Proxy:
    """Forwards to the registry; `cut` blob answers after N bytes (once each) or `corrupt`
    one byte of every blob."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.cut_after: int | None = None
        self.cuts = 0
        self.corrupt = False
        self.ranges: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.forward()

            def do_GET(self):
                self.forward()

            def forward(self):
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                if "Range" in self.headers:
                    proxy.ranges.append(self.headers["Range"])
                conn.request(self.command, self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read() if self.command != "HEAD" else b""
                blob = "/blobs/" in self.path and resp.status in (200, 206)
                if blob and proxy.corrupt and body:
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if blob and proxy.cut_after and proxy.cuts < 2 and len(body) > proxy.cut_after:
                    proxy.cuts += 1
                    self.wfile.write(body[:proxy.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)
                conn.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = _registry(tmp_path_factory)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def proxy(registry):
    p = Proxy(registry.host)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def pushed(registry, daemon, test_images):
    name = f"{registry.host}/t/busybox:latest"
    load_as(daemon, test_images, name)
    lines = list(daemon.client().api.push(name.rsplit(":", 1)[0], "latest", stream=True,
                                          decode=True))
    assert not [l for l in lines if "error" in l], lines
    return name


def _drop_images(sdk):
    for img in sdk.images.list():
        sdk.images.remove(img.id, force=True)


def test_cut_connection_resumes(daemon, pushed, proxy):
    sdk = daemon.client()
    _drop_images(sdk)
    proxy.cut_after = 300_000
    ref = f"{proxy.host}/t/busybox"
    lines = list(sdk.api.pull(ref, "latest", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert proxy.cuts >= 1 and proxy.ranges and proxy.ranges[0] == "bytes=300000-"
    assert sdk.containers.run(f"{ref}:latest", ["echo", "ok"], remove=True) == b"ok\n"


def test_corrupt_blob_is_refused_and_not_stored(daemon, pushed, proxy):
    sdk = daemon.client()
    _drop_images(sdk)
    proxy.corrupt = True
    lines = list(daemon.client().api.pull(f"{proxy.host}/t/busybox", "latest", stream=True,
                                          decode=True))
    assert "digest mismatch" in lines[-1].get("error", ""), lines
    assert sdk.images.list() == []
    blobs = os.path.join(daemon.root, "content", "blobs", "sha256")
    assert not os.path.isdir(blobs) or os.listdir(blobs) == [], os.listdir(blobs)


def _push_platform_image(client: RegistryClient, store: ContentStore, layer_digest: str,
                         layer_size: int, layer_type: str, config: dict) -> dict:
    config_bytes = json.dumps(config).encode()
    config_digest = digest_of(config_bytes)
    import io
    client.upload_blob("t/multi", config_digest, len(config_bytes), io.BytesIO(config_bytes))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci_image.OCI_MANIFEST,
        "config": {"mediaType": oci_image.OCI_CONFIG, "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
    }).encode()
    digest = client.put_manifest("t/multi", digest_of(manifest), manifest,
                                 oci_image.OCI_MANIFEST)
    return {"mediaType": oci_image.OCI_MANIFEST, "digest": digest, "size": len(manifest),
            "platform": {"architecture": config["architecture"], "os": "linux"},
            "config": config_digest}


def test_multi_platform_index(daemon, pushed, registry, tmp_path):
    """An OCI index with an amd64 and an arm64 image (same layer, configs differing by
    architecture): the host's is chosen by default, the other with --platform."""
    client = RegistryClient(hosts.endpoint_for(registry.host), certs_dir=None)
    store = ContentStore(tmp_path)
    amd = client.get_manifest("t/busybox", "latest").document
    layer = amd.layers[0]
    client.fetch_blob("t/busybox", amd.config, store)
    base = json.loads(store.read_bytes(amd.config.digest))
    client.upload_blob("t/multi", layer.digest, layer.size, _blob(client, layer))
    entries = [_push_platform_image(client, store, layer.digest, layer.size, layer.media_type,
                                    dict(base, architecture=arch)) for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": oci_image.OCI_INDEX, "manifests": [
        {k: v for k, v in e.items() if k != "config"} for e in entries]}).encode()
    client.put_manifest("t/multi", "latest", index, oci_image.OCI_INDEX)
    client.close()

    sdk = daemon.client()
    ref = f"{registry.host}/t/multi"
    assert not [l for l in sdk.api.pull(ref, "latest", stream=True, decode=True) if "error" in l]
    got = sdk.images.get(f"{ref}:latest")
    host_arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    want = entries[0] if host_arch == "amd64" else entries[1]
    assert got.id == want["config"]
    other = entries[1] if host_arch == "amd64" else entries[0]
    other_arch = other["platform"]["architecture"]
    lines = list(sdk.api.pull(ref, "latest", platform=f"linux/{other_arch}", stream=True,
                              decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert sdk.images.get(f"{ref}:latest").id == other["config"]
    info = sdk.api.inspect_distribution(f"{ref}:latest")
    assert info["Descriptor"]["mediaType"] == oci_image.OCI_INDEX
    assert {p["architecture"] for p in info["Platforms"]} == {"amd64", "arm64"}
    with pytest.raises(Exception, match="no matching manifest for linux/s390x"):
        sdk.images.pull(ref, "latest", platform="linux/s390x")


def _blob(client, desc):
    import io
    resp = client.request("GET", f"/v2/t/busybox/blobs/{desc.digest}")
    return io.BytesIO(resp.read())


def _make_certs(d: str) -> tuple[str, str, str]:
    ca_key, ca_crt = f"{d}/ca.key", f"{d}/ca.crt"
    key, csr, crt, ext = f"{d}/server.key", f"{d}/server.csr", f"{d}/server.crt", f"{d}/ext"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
        ca_crt, "-days", "2", "-subj", "/CN=skiff test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


def test_tls_with_a_ca_in_certs_d(tmp_path_factory, tmp_path):
    d = str(tmp_path_factory.mktemp("tls"))
    ca, crt, key = _make_certs(d)
    r = Registry(d)
    with open(r.config, "a") as f:
        f.write(f"  tls:\n    certificate: {crt}\n    key: {key}\n")
    r.start_url = "https"
    try:
        _start_tls(r)
        store = ContentStore(tmp_path / "store")
        secure = hosts.Endpoint(r.host, True, r.host)
        # without the CA: refused
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            RegistryClient(secure, certs_dir=str(tmp_path / "none"), retries=0).ping()
        certs_d = tmp_path / "certs.d" / r.host
        certs_d.mkdir(parents=True)
        (certs_d / "ca.crt").write_bytes(open(ca, "rb").read())
        client = RegistryClient(secure, certs_dir=str(tmp_path / "certs.d"))
        client.ping()
        assert client.scheme() == "https"
        import io
        data = b"hello over tls"
        client.upload_blob("t/tls", digest_of(data), len(data), io.BytesIO(data))
        desc = oci_image.Descriptor(oci_image.OCI_LAYER, digest_of(data), len(data))
        client.fetch_blob("t/tls", desc, store)
        assert store.read_bytes(desc.digest) == data
        # loopback counts as insecure: HTTPS without verification is used first
        insecure = RegistryClient(hosts.endpoint_for(r.host), certs_dir=None)
        insecure.ping()
        assert insecure.scheme() == "https"
    finally:
        r.stop()


def _start_tls(r: Registry) -> None:
    import ssl
    import time
    import urllib.request
    log = open(os.path.join(r.dir, "registry.log"), "ab")
    r.proc = subprocess.Popen(["docker-registry", "serve", r.config], stdout=log, stderr=log)
    ctx = ssl._create_unverified_context()
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"https://{r.host}/v2/", timeout=1, context=ctx)
            return
        except OSError:
            if r.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("docker-registry (TLS) did not start")
            time.sleep(0.05)


def test_chunked_upload(registry, tmp_path):
    import io
    data = os.urandom(2_500_000)
    digest = digest_of(data)
    client = RegistryClient(hosts.endpoint_for(registry.host), certs_dir=None)
    assert not client.blob_exists("t/chunked", digest)
    assert client.upload_blob("t/chunked", digest, len(data), io.BytesIO(data),
                              chunk_size=1_000_000) == "pushed"
    assert client.blob_exists("t/chunked", digest)
    store = ContentStore(tmp_path)
    client.fetch_blob("t/chunked", oci_image.Descriptor(oci_image.OCI_LAYER, digest, len(data)),
                      store)
    assert store.read_bytes(digest) == data
    # a chunked upload whose bytes do not match the digest is refused by the registry
    with pytest.raises(Exception, match="digest"):
        client.upload_blob("t/chunked", "sha256:" + "0" * 64, len(data), io.BytesIO(data),
                           chunk_size=1_000_000)
    client.close()


@pytest.mark.parametrize("chunk_size", [None, 300_000])
def test_streamed_upload_learns_its_digest(registry, tmp_path, chunk_size):
    """A blob made while it is sent (a layer compressed on the fly): one chunked PATCH, or
    PATCHes of a set size, then PUT with the digest computed on the way."""
    data = os.urandom(1_000_003)
    repo = f"t/streamed{chunk_size or 0}"
    client = RegistryClient(hosts.endpoint_for(registry.host), certs_dir=None)
    pieces = (data[i:i + 65_536] for i in range(0, len(data), 65_536))
    digest, size, how = client.upload_stream(repo, pieces, chunk_size=chunk_size)
    assert (digest, size, how) == (digest_of(data), len(data), "pushed")
    store = ContentStore(tmp_path)
    client.fetch_blob(repo, oci_image.Descriptor(oci_image.OCI_LAYER, digest, size), store)
    assert store.read_bytes(digest) == data
    # pushed once, mounted into another repository without reading the stream again
    def never():
        raise AssertionError("the stream was read")
        yield b""
    assert client.upload_stream(f"{repo}-copy", never(), known_digest=digest,
                                mount_from=repo)[2] == "mounted"
    assert client.blob_exists(f"{repo}-copy", digest)
    client.close()


def test_push_mounts_blobs_from_another_repository(daemon, pushed, registry, test_images):
    """The image is also tagged in t/busybox, which the registry holds: its layers are
    mounted across repositories instead of uploaded."""
    load_as(daemon, test_images, f"{registry.host}/t/copy:1", pushed)
    lines = list(daemon.client().api.push(f"{registry.host}/t/copy", "1", stream=True,
                                          decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert any(l.get("status") == "Mounted from t/busybox" for l in lines), lines


def test_docker_hub_mirror(registry, test_images, tmp_path):
    """`busybox` is fetched from a configured mirror (the first one, unreachable, is
    skipped); Docker Hub itself is never contacted."""
    import shutil as _shutil
    from skiff.engine import images as engine_images
    from skiff.engine import pull as engine_pull
    from skiff.errors import SkiffError
    from skiff.snapshot import Snapshotter
    from skiff.store import MetadataDB
    if not _shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    f"docker-archive:{test_images}/busybox.tar",
                    f"docker://{registry.host}/library/busybox:latest"], check=True)
    root = str(tmp_path / "root")
    os.makedirs(root)
    service = engine_images.ImageService(ContentStore(root), MetadataDB(f"{root}/skiff.db"),
                                         Snapshotter(root))
    dead = f"http://127.0.0.1:{_free_port()}"
    options = engine_pull.RegistryOptions(mirrors=[dead, f"http://{registry.host}"],
                                          allowed=(), certs_dir=None)
    record = engine_pull.pull(service, "busybox", options=options)
    assert record.repo_tags == ["busybox:latest"]
    with pytest.raises(SkiffError, match="not in this daemon's allowed registries"):
        engine_pull.pull(service, "busybox:other",
                         options=engine_pull.RegistryOptions(allowed=(), mirrors=[dead]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tls_client_certificate_from_certs_d(tmp_path_factory, tmp_path):
    """A registry that asks for client certificates (clientcas): `client.cert` and
    `client.key` in certs.d/HOST:PORT/ are presented, as docker does."""
    d = str(tmp_path_factory.mktemp("mtls"))
    ca, crt, key = _make_certs(d)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/client.key",
        "-out", f"{d}/client.csr", "-subj", "/CN=skiff client")
    with open(f"{d}/client-ext", "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", f"{d}/client.csr", "-CA", ca, "-CAkey",
        f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/client.cert", "-days", "2",
        "-extfile", f"{d}/client-ext")
    r = Registry(d)
    with open(r.config, "a") as f:
        f.write(f"  tls:\n    certificate: {crt}\n    key: {key}\n    clientcas:\n"
                f"      - {ca}\n")
    try:
        _start_tls_with_client(r, f"{d}/client.cert", f"{d}/client.key")
        certs_d = tmp_path / "certs.d" / r.host
        certs_d.mkdir(parents=True)
        (certs_d / "ca.crt").write_bytes(open(ca, "rb").read())
        secure = hosts.Endpoint(r.host, True, r.host)
        with pytest.raises(RegistryUnavailable):
            RegistryClient(secure, certs_dir=str(tmp_path / "certs.d"), retries=0).ping()
        (certs_d / "client.cert").write_bytes(open(f"{d}/client.cert", "rb").read())
        (certs_d / "client.key").write_bytes(open(f"{d}/client.key", "rb").read())
        RegistryClient(secure, certs_dir=str(tmp_path / "certs.d")).ping()
    finally:
        r.stop()


def _start_tls_with_client(r: Registry, cert: str, key: str) -> None:
    import ssl
    import time
    import urllib.request
    log = open(os.path.join(r.dir, "registry.log"), "ab")
    r.proc = subprocess.Popen(["docker-registry", "serve", r.config], stdout=log, stderr=log)
    ctx = ssl._create_unverified_context()
    ctx.load_cert_chain(cert, key)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"https://{r.host}/v2/", timeout=1, context=ctx)
            return
        except OSError:
            if r.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("docker-registry (mutual TLS) did not start")
            time.sleep(0.05)
