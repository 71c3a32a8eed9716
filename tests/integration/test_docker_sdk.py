"""The Docker SDK for Python as a client of skiffd."""

from __future__ import annotations

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def sdk(daemon):
    return daemon.client()


def test_version_negotiation(sdk):
    version = sdk.version()
    assert version["ApiVersion"] >= "1.44" and version["MinAPIVersion"] == "1.24"
    assert sdk.ping() is True


def test_run_remove(sdk):
    assert sdk.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_detach_wait_logs_inspect(sdk):
    container = sdk.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2; exit 4"],
                                   detach=True, name="sdk-detached")
    try:
        assert container.wait()["StatusCode"] == 4
        assert container.logs(stdout=True, stderr=False) == b"a\n"
        assert container.logs(stdout=False, stderr=True) == b"b\n"
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 4
        assert container.attrs["Name"] == "/sdk-detached"
        assert sdk.containers.get("sdk-detached").id == container.id
    finally:
        container.remove(force=True)


def test_errors_as_docker_gives_them(sdk):
    with pytest.raises(docker.errors.ImageNotFound):
        sdk.containers.create("nosuchimage:1")
    with pytest.raises(docker.errors.NotFound, match="No such container: nope"):
        sdk.containers.get("nope")
    running = sdk.containers.run("busybox", "sleep 30", detach=True, name="sdk-busy")
    try:
        with pytest.raises(docker.errors.APIError) as info:
            sdk.containers.create("busybox", "true", name="sdk-busy")
        assert info.value.status_code == 409 and "already in use" in str(info.value)
        with pytest.raises(docker.errors.APIError) as info:
            running.remove()
        assert info.value.status_code == 409
    finally:
        running.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        sdk.containers.get("sdk-busy")


def test_api_version_bounds(daemon):
    import json
    import socket

    def get(path):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.sock)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return head, body

    head, body = get("/v1.12/version")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"client version 1.12 is too old. Minimum supported API version is 1.24" in body
    head, _ = get("/v1.24/version")
    assert head.startswith(b"HTTP/1.1 200") and b"Api-Version:" in head
    head, body = get("/v1.45/containers/nope/json")
    assert head.startswith(b"HTTP/1.1 404")
    assert json.loads(body) == {"message": "No such container: nope"}


def test_bad_request_bodies_are_400_not_crashes(daemon):
    import json
    import socket

    def post(path, body: bytes):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.sock)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest

    for body in (b"{not json", b'{"Image": 5}', b'{"Image": "busybox", "Cmd": {"a": 1}}',
                 b'{"Image": "busybox", "HostConfig": {"Memory": "lots"}}', b"[]",
                 b'{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "x"}}}'):
        status, rest = post("/v1.45/containers/create", body)
        assert status == 400, (body, rest)
        assert json.loads(rest)["message"]
    status, _ = post("/v1.45/containers/create?name=bad%20name",
                     b'{"Image": "busybox", "Cmd": ["true"]}')
    assert status == 400
    assert daemon.client().ping()
