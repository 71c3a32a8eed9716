"""skiffd on tcp:// only with TLS client verification: skiff's CLI, the Docker SDK and the
docker CLI reach it with a client certificate; without one, or with one from another CA, or
in plain HTTP, they are refused; a TCP listener without TLS is refused at start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.root


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(d: str, ca: str, name: str, cn: str, ext: str) -> tuple[str, str]:
    key, csr, crt, extfile = (f"{d}/{name}.key", f"{d}/{name}.csr", f"{d}/{name}.crt",
                              f"{d}/{name}.ext")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={cn}")
    with open(extfile, "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", csr, "-CA", f"{d}/{ca}.crt", "-CAkey", f"{d}/{ca}.key",
             "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", extfile)
    return crt, key


@pytest.fixture(scope="module")
def certs():
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tempfile.mkdtemp(prefix="skiff-tls-")
    try:
        for ca in ("ca", "other-ca"):
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                     f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-days", "2",
                     "-subj", f"/CN=skiff test {ca}")
        server = _issue(d, "ca", "server", "127.0.0.1",
                        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        client = _issue(d, "ca", "client", "client", "extendedKeyUsage=clientAuth\n")
        stranger = _issue(d, "other-ca", "stranger", "client", "extendedKeyUsage=clientAuth\n")
        yield {"dir": d, "ca": f"{d}/ca.crt", "server": server, "client": client,
               "stranger": stranger}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tcp(daemon, certs):
    """The module's daemon, restarted with a TLS listener on a loopback port as well."""
    port = _free_port()
    daemon.stop()
    daemon.extra_args = ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                         "--tlscacert", certs["ca"], "--tlscert", certs["server"][0],
                         "--tlskey", certs["server"][1]]
    daemon.start()
    return f"tcp://127.0.0.1:{port}"


def _skiff(host: str, *args, tls: list[str]):
    return subprocess.run([sys.executable, "-m", "skiff.cli.main", "-H", host, *tls, *args],
                          capture_output=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))


def test_skiff_cli_over_tls_with_a_client_certificate(tcp, certs):
    crt, key = certs["client"]
    flags = ["--tlsverify", "--tlscacert", certs["ca"], "--tlscert", crt, "--tlskey", key]
    result = _skiff(tcp, "run", "--rm", "busybox", "echo", "over tls", tls=flags)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"over tls\n"
    # stdin's end reaches the container (a TLS half-close) and its output still comes back.
    result = subprocess.run(
        [sys.executable, "-m", "skiff.cli.main", "-H", tcp, *flags, "run", "--rm", "-i",
         "busybox", "sh", "-c", "cat; sleep 0.2; echo after-eof"],
        input=b"from stdin\n", capture_output=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"from stdin\nafter-eof\n"
    # The defaults come from $SKIFF_CERT_PATH as docker's from $DOCKER_CERT_PATH.
    d = certs["dir"]
    for src, name in ((certs["ca"], "ca.pem"), (crt, "cert.pem"), (key, "key.pem")):
        shutil.copy(src, os.path.join(d, name))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), SKIFF_CERT_PATH=d,
               SKIFF_TLS_VERIFY="1")
    version = subprocess.run([sys.executable, "-m", "skiff.cli.main", "-H", tcp, "version"],
                             capture_output=True, timeout=60, env=env)
    assert version.returncode == 0, version.stderr.decode()
    assert b"Server:" in version.stdout


def test_clients_without_a_trusted_certificate_are_refused(tcp, certs):
    no_cert = _skiff(tcp, "ps", tls=["--tlsverify", "--tlscacert", certs["ca"]])
    assert no_cert.returncode != 0
    crt, key = certs["stranger"]
    stranger = _skiff(tcp, "ps", tls=["--tlsverify", "--tlscacert", certs["ca"],
                                      "--tlscert", crt, "--tlskey", key])
    assert stranger.returncode != 0
    assert b"TLS" in stranger.stderr or b"certificate" in stranger.stderr
    # Plain HTTP to the TLS port gets no API answer.
    host, port = tcp[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert b"OK" not in answer and b"Api-Version" not in answer


def test_docker_sdk_over_tls(tcp, certs, monkeypatch):
    import docker

    # requests lets these variables override the session's CA (psf/requests#3829).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    tls = docker.tls.TLSConfig(client_cert=certs["client"], ca_cert=certs["ca"], verify=True)
    client = docker.DockerClient(base_url=tcp.replace("tcp://", "https://"), tls=tls,
                                 version="1.45", timeout=60)
    assert client.ping()
    assert client.containers.run("busybox", ["echo", "sdk"], remove=True) == b"sdk\n"


def test_docker_cli_over_tls(tcp, certs):
    docker_cli = shutil.which("docker")
    if not docker_cli:
        pytest.skip("no docker CLI installed")
    crt, key = certs["client"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    result = subprocess.run([docker_cli, "-H", tcp, "--tlsverify", "--tlscacert", certs["ca"],
                             "--tlscert", crt, "--tlskey", key, "run", "--rm", "busybox",
                             "echo", "docker over tls"],
                            capture_output=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"docker over tls\n"
    # The docker CLI half-closes every attach at once (CloseWrite): output must still come.
    result = subprocess.run([docker_cli, "-H", tcp, "--tlsverify", "--tlscacert", certs["ca"],
                             "--tlscert", crt, "--tlskey", key, "run", "--rm", "-i", "busybox",
                             "sh", "-c", "cat; sleep 0.2; echo done"],
                            input=b"piped\n", capture_output=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"piped\ndone\n"


def test_tcp_without_tls_is_refused_at_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skiff.api.daemon", "--root", str(tmp_path / "root"),
         "--exec-root", str(tmp_path / "run"), "-H", f"tcp://127.0.0.1:{_free_port()}"],
        capture_output=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert result.returncode != 0
    assert b"without TLS client verification" in result.stderr
    assert not (tmp_path / "root").exists()  # refused before touching any state
