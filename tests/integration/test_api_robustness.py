"""Every endpoint of skiffd, fed malformed bodies and nonsense query values: the answer is a
4xx with docker's `{"message": ...}` body (or a success where the input is ignored, as
dockerd ignores it), never a 500, never a hang, and the daemon keeps serving.

Routes are read from the API's source, so an endpoint added later is covered too."""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import uuid

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.root

ROUTE = re.compile(r'\("(GET|POST|PUT|DELETE|HEAD)", "(/[^"]*)"')
NONSENSE = "x!{%"
QUERY_NAMES = ("t", "timeout", "h", "w", "tail", "since", "until", "signal", "condition",
               "filters", "all", "size", "limit", "force", "v", "link", "stream", "one-shot",
               "follow", "stdout", "stderr", "timestamps", "path", "fromImage", "tag", "repo",
               "changes", "pause", "names", "platform", "noprune", "quiet", "buildargs",
               "labels", "ps_args", "detachKeys", "logs", "noOverwriteDirNonDir", "name")
# Answers that stream until the client leaves: only their status line is read.
STREAMING = {"/events", "/containers/{id}/stats", "/containers/{id}/logs",
             "/containers/{id}/attach", "/containers/{id}/export", "/images/get",
             "/images/{name:.+}/get", "/containers/{id}/archive"}


def routes() -> list[tuple[str, str]]:
    found = set()
    for path in glob.glob(os.path.join(ROOT, "src", "skiff", "api", "*.py")):
        with open(path) as f:
            found.update(ROUTE.findall(f.read()))
    return sorted(found)


def request(sock_path: str, method: str, target: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, bytes]:
    """Status and (for errors) body; a streaming success is cut after its head."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(sock_path)
        head = f"{method} {target} HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + (body or b""))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        if status < 400 or method == "HEAD":
            return status, b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(scope="module")
def objects(daemon):
    tag = uuid.uuid4().hex[:6]
    sdk = daemon.client()
    container = sdk.containers.run("busybox", ["sleep", "300"], detach=True,
                                   name=f"rb-{tag}")
    exec_id = sdk.api.exec_create(container.id, ["true"])["Id"]
    names = {"id": container.id, "name:.+": "busybox", "name": f"rbvol-{tag}"}
    try:
        sdk.volumes.create(f"rbvol-{tag}")
    except Exception:
        pass
    yield {"ids": names, "exec": exec_id, "network": f"rbnet-{tag}"}
    container.remove(force=True)
    try:
        sdk.volumes.get(f"rbvol-{tag}").remove(force=True)
    except Exception:
        pass


def fill(pattern: str, objects) -> str:
    path = pattern
    if pattern.startswith("/exec/"):
        return path.replace("{id}", objects["exec"])
    if pattern.startswith("/networks/"):
        return path.replace("{id}", "bridge")
    for key, value in objects["ids"].items():
        path = path.replace("{" + key + "}", value)
    return path


def assert_docker_error(status: int, body: bytes, what: str) -> None:
    assert status != 500 and status != 0, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        try:
            message = json.loads(body).get("message")
        except ValueError:
            message = None
        assert message, f"{what}: {status} without docker's error body: {body[:300]!r}"


# Endpoints whose success would change what the other cases rely on, or take minutes.
SKIP_SUCCESS = {("POST", "/images/load"), ("POST", "/build"), ("POST", "/images/create"),
                ("POST", "/images/{name:.+}/push"), ("DELETE", "/containers/{id}"),
                ("DELETE", "/images/{name:.+}"), ("POST", "/containers/prune"),
                ("POST", "/images/prune"), ("POST", "/volumes/prune"),
                ("POST", "/networks/prune"), ("POST", "/build/prune"),
                ("POST", "/containers/{id}/kill"), ("POST", "/containers/{id}/stop"),
                ("POST", "/containers/{id}/restart"), ("POST", "/containers/{id}/pause"),
                ("DELETE", "/networks/{id}"), ("DELETE", "/volumes/{name}"),
                ("POST", "/containers/{id}/rename"), ("POST", "/containers/{id}/wait"),
                ("POST", "/exec/{id}/start"), ("POST", "/containers/{id}/attach"),
                ("PUT", "/containers/{id}/archive"), ("POST", "/auth"),
                ("GET", "/distribution/{name:.+}/json")}   # asks a registry


def test_malformed_bodies_are_refused_with_400(daemon, objects):
    for method, pattern in routes():
        if method not in ("POST", "PUT") or (method, pattern) in SKIP_SUCCESS:
            continue
        path = fill(pattern, objects)
        for body in (b"{", b"[1, 2]", b'"text"', b'{"Image": 7, "Name": [], "Driver": {}}'):
            status, answer = request(daemon.sock, method, f"/v1.45{path}", body)
            assert_docker_error(status, answer, f"{method} {path} body={body!r}")


def test_nonsense_query_values_never_crash(daemon, objects):
    for method, pattern in routes():
        if (method, pattern) in SKIP_SUCCESS:
            continue
        path = fill(pattern, objects)
        for name in QUERY_NAMES:
            target = f"/v1.45{path}?{name}={NONSENSE.replace('%', '%25')}"
            if pattern in STREAMING and name in ("stream", "follow"):
                continue  # a true value: it would stream until we leave, which is right
            status, answer = request(daemon.sock, method, target)
            assert_docker_error(status, answer, f"{method} {target}")
    # Still serving, and the objects are intact.
    assert request(daemon.sock, "GET", "/_ping")[0] == 200
    assert daemon.client().containers.get(objects["ids"]["id"]).status == "running"


def test_old_and_current_version_prefixes(daemon):
    for version in ("1.24", "1.30", "1.41", "1.45"):
        status, _ = request(daemon.sock, "GET", f"/v{version}/containers/json")
        assert status == 200, version
    status, body = request(daemon.sock, "GET", "/v1.12/containers/json")
    assert status == 400 and b"too old" in body


WRONGLY_TYPED = [
    ("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "lots"}}),
    ("POST", "/containers/create", {"Image": "busybox", "Env": "A=1"}),
    ("POST", "/containers/create", {"Image": ["busybox"]}),
    ("POST", "/containers/{id}/update", {"Memory": "lots"}),
    ("POST", "/containers/{id}/update", {"RestartPolicy": "always"}),
    ("POST", "/containers/{id}/exec", {"Cmd": 5}),
    ("POST", "/containers/{id}/exec", {"Cmd": ["true"], "Env": "A=1"}),
    ("POST", "/exec/{id}/start", {"Detach": "yes"}),
    ("POST", "/networks/create", {"Name": 5}),
    ("POST", "/networks/create", {"Name": "rb-typed", "IPAM": "default"}),
    ("POST", "/networks/{id}/connect", {"Container": 5}),
    ("POST", "/volumes/create", {"Name": "rb-typed", "Labels": "a=b"}),
    ("POST", "/volumes/create", {"Name": 5}),
    ("POST", "/commit?container={id}", {"Env": 5}),
]


def test_wrongly_typed_fields_get_400_with_a_message(daemon, objects):
    for method, pattern, body in WRONGLY_TYPED:
        path = fill(pattern, objects).replace("{id}", objects["ids"]["id"])
        status, answer = request(daemon.sock, method, f"/v1.45{path}",
                                 json.dumps(body).encode())
        assert status == 400, f"{method} {path} {body}: {status} {answer[:300]!r}"
        assert json.loads(answer)["message"]
    sdk = daemon.client()
    assert not sdk.networks.list(names=["rb-typed"]) and not sdk.volumes.list(
        filters={"name": "rb-typed"})            # nothing half-made by a refused request
