"""api/distribution.py's pure helpers: fromImage + tag, and /auth's server address."""

import pytest

from skiff.api.distribution import _pull_reference, _with_bar
from skiff.engine.pull import RegistryOptions, login_domain as _login_domain, message


@pytest.mark.parametrize("source, tag, expected", [
    ("busybox", "", "busybox"),
    ("busybox", "1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "latest", "docker.io/library/busybox:latest"),
    ("localhost:5000/x", "v1", "localhost:5000/x:v1"),
    ("busybox", "sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
])
def test_pull_reference(source, tag, expected):
    assert _pull_reference(source, tag) == expected


@pytest.mark.parametrize("server, domain", [
    ("", "docker.io"), ("https://index.docker.io/v1/", "docker.io"),
    ("registry-1.docker.io", "docker.io"), ("localhost:5000", "localhost:5000"),
    ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
])
def test_login_domain(server, domain):
    assert _login_domain(server) == domain


def test_registry_options_from_environment():
    o = RegistryOptions.from_environment({
        "SKIFF_REGISTRY_ALLOW": "quay.io, ghcr.io", "SKIFF_INSECURE_REGISTRIES": "10.0.0.0/8",
        "SKIFF_MAX_CONCURRENT_DOWNLOADS": "6", "SKIFF_UPLOAD_CHUNK_SIZE": "1048576",
        "SKIFF_REGISTRY_MIRRORS": "https://m1.example,http://127.0.0.1:5000"})
    assert o.allowed == ("quay.io", "ghcr.io") and o.insecure == ["10.0.0.0/8"]
    assert o.concurrency == 6 and o.upload_chunk_size == 1 << 20
    assert o.mirrors == ["https://m1.example", "http://127.0.0.1:5000"]
    assert RegistryOptions.from_environment({"SKIFF_REGISTRY_ALLOW": ""}).allowed == ()
    assert RegistryOptions.from_environment({}).allowed is None


def test_messages_and_bar():
    m = message("Downloading", "abc", 50, 100)
    assert m == {"status": "Downloading", "progressDetail": {"current": 50, "total": 100},
                 "id": "abc"}
    assert _with_bar(m)["progress"].startswith("[=")
    assert _with_bar(message("Pull complete", "abc")) == {"status": "Pull complete",
                                                          "id": "abc"}
