"""Detach keys for exec, detected by the daemon (as docker's clients expect: the docker CLI
sends the keys through and waits for the daemon to end the session): the client leaves, the
process runs on, an `exec_detach` event is emitted; docker's error for bad keys."""

import socket
import time

import pytest

pytestmark = [pytest.mark.root]


def _read_until(sock, want: bytes, timeout=10.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while want not in out and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        out += chunk
    return out


def _closed_by_peer(sock, timeout=10.0) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


@pytest.fixture
def ctr(daemon):
    c = daemon.client().containers.run("busybox", ["sleep", "300"], detach=True)
    yield c
    c.remove(force=True)


@pytest.mark.parametrize("keys,typed", [(None, b"\x10\x11"), ("ctrl-x,y", b"\x18y")])
def test_detach_keys_end_the_session_and_leave_the_process(daemon, ctr, keys, typed):
    api = daemon.client().api
    since = time.time() - 1
    exec_id = api.exec_create(ctr.id, ["sh"], stdin=True, tty=True, detach_keys=keys)["Id"]
    sock = api.exec_start(exec_id, tty=True, socket=True)._sock
    try:
        sock.sendall(b"echo rea''dy\n")
        assert b"ready" in _read_until(sock, b"ready")
        sock.sendall(typed)
        assert _closed_by_peer(sock)
    finally:
        sock.close()
    info = api.exec_inspect(exec_id)
    assert info["Running"] is True   # the shell runs on
    events = api.events(since=since, until=time.time() + 1, decode=True,
                        filters={"container": ctr.id})
    assert "exec_detach" in [e.get("Action") or e.get("status") for e in events]


def test_without_a_terminal_the_keys_are_input(daemon, ctr):
    api = daemon.client().api
    exec_id = api.exec_create(ctr.id, ["od", "-An", "-c"], stdin=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)._sock
    try:
        sock.sendall(b"\x10\x11")
        sock.shutdown(socket.SHUT_WR)
        out = _read_until(sock, b"021")
    finally:
        sock.close()
    assert b"020" in out and b"021" in out   # passed through as bytes (octal 020, 021)


def test_bad_detach_keys_are_refused(daemon, ctr):
    import docker

    api = daemon.client().api
    with pytest.raises(docker.errors.APIError) as info:
        api.exec_create(ctr.id, ["true"], detach_keys="ctrl-")
    assert info.value.status_code == 400
    assert "Invalid escape keys (ctrl-) provided" in str(info.value)
