"""Published ports: -p (tcp, udp, ranges, host IP), -P, `port`, reachable from 127.0.0.1, from
the host's own address and from other containers through it; conflicts; rules removed.

Requests go only to 127.0.0.1, the host's own address (which never leaves the machine) and
the test's own containers."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

from skiff.linux import ns as linux_ns

pytestmark = pytest.mark.root


def host_address() -> str:
    """An address of this host's own (not loopback, not a bridge of any engine)."""
    text = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                          capture_output=True, text=True).stdout
    for line in text.splitlines():
        fields = line.split()
        name, cidr = fields[1], fields[3]
        if not name.startswith(("skt", "skiff", "br-", "docker", "sk", "veth")):
            return cidr.split("/")[0]
    pytest.skip("this host has no global IPv4 address of its own")


def http_get(host: str, port: int, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return data.decode().rsplit("\n", 2)[-2 if data.endswith(b"\n") else -1].strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


@pytest.fixture
def httpd(daemon):
    made = []

    def start(*flags):
        cid = daemon.cli("run", "-d", *flags, "busybox", "httpd", "-f", "-p", "8000", "-h",
                         "/etc")
        assert cid.returncode == 0, cid.stderr.decode()
        made.append(cid.stdout.decode().strip())
        return made[-1]
    yield start
    for cid in made:
        daemon.cli("rm", "-f", cid)


def ports_of(daemon, cid) -> dict:
    return daemon.client().api.inspect_container(cid)["NetworkSettings"]["Ports"]


def test_published_port_answers_on_loopback_and_the_host_address(daemon, httpd):
    port = free_port()
    cid = httpd("-p", f"{port}:8000")
    assert ports_of(daemon, cid)["8000/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    assert http_get("127.0.0.1", port) == cid[:12]
    assert http_get(host_address(), port) == cid[:12]
    # from another container, through the host's address (docker's hairpin)
    text = daemon.cli("run", "--rm", "busybox", "sh", "-c",
                      f"printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host_address()} "
                      f"{port} | tail -n 1")
    assert text.stdout.decode().strip() == cid[:12], text.stderr
    port_out = daemon.cli("port", cid)
    assert port_out.stdout.decode() == f"8000/tcp -> 0.0.0.0:{port}\n"
    assert daemon.cli("port", cid, "8000").stdout.decode() == f"0.0.0.0:{port}\n"
    missing = daemon.cli("port", cid, "9999/udp")
    assert missing.returncode == 1 and b"No public port '9999/udp' published" in missing.stderr


def test_two_containers_same_container_port_different_host_ports(daemon, httpd):
    a = httpd("-p", "127.0.0.1::8000")
    b = httpd("-p", "127.0.0.1::8000")
    pa = int(ports_of(daemon, a)["8000/tcp"][0]["HostPort"])
    pb = int(ports_of(daemon, b)["8000/tcp"][0]["HostPort"])
    assert pa != pb
    assert ports_of(daemon, a)["8000/tcp"][0]["HostIp"] == "127.0.0.1"
    assert http_get("127.0.0.1", pa) == a[:12]
    assert http_get("127.0.0.1", pb) == b[:12]
    # bound to 127.0.0.1 only: the host's other address does not forward it
    with pytest.raises(OSError):
        http_get(host_address(), pa, timeout=0.5)


def test_ranges_and_publish_all(daemon, httpd):
    first = free_port()
    while True:
        try:
            with socket.socket() as s:
                s.bind(("0.0.0.0", first + 1))
            break
        except OSError:
            first = free_port()
    cid = httpd("-p", f"{first}-{first + 1}:8000-8001")
    ports = ports_of(daemon, cid)
    assert ports["8000/tcp"][0]["HostPort"] == str(first)
    assert ports["8001/tcp"][0]["HostPort"] == str(first + 1)
    assert http_get("127.0.0.1", first) == cid[:12]
    every = httpd("--expose", "8000", "--expose", "7000/udp", "-P")
    ports = ports_of(daemon, every)
    assert set(ports) == {"8000/tcp", "7000/udp"}
    assert http_get("127.0.0.1", int(ports["8000/tcp"][0]["HostPort"])) == every[:12]
    rows = daemon.client().api.containers(filters={"id": every})
    published = {(p["PrivatePort"], p["Type"]) for p in rows[0]["Ports"]}
    assert published == {(8000, "tcp"), (7000, "udp")}


def test_port_conflict_is_dockers_error(daemon, httpd):
    port = free_port()
    httpd("-p", f"{port}:8000")
    # held for the container, as docker holds it: no host program can take it meanwhile
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("0.0.0.0", port))
    result = daemon.cli("run", "-d", "-p", f"{port}:8000", "busybox", "true")
    assert result.returncode == 125
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated".encode() in \
        result.stderr
    daemon.cli("container", "prune", "-f")


def udp_server_in(netns_path: str, port: int) -> socket.socket:
    """A UDP socket bound inside a container's network namespace (a thread joins it to make
    the socket; the socket stays there)."""
    box = {}

    def make():
        fd = os.open(netns_path, os.O_RDONLY)
        linux_ns.setns(fd, linux_ns.CLONE_NEWNET)
        os.close(fd)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        box["s"] = s
    t = threading.Thread(target=make)
    t.start()
    t.join()
    return box["s"]


def test_udp_publishing(daemon):
    port = free_port(socket.SOCK_DGRAM)
    client = daemon.client()
    c = client.containers.run("busybox", ["sleep", "60"], detach=True,
                              ports={"5353/udp": ("127.0.0.1", port)})
    try:
        c.reload()
        assert c.attrs["NetworkSettings"]["Ports"]["5353/udp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(port)}]
        server = udp_server_in(c.attrs["NetworkSettings"]["SandboxKey"], 5353)
        server.settimeout(5)
        with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.0.1", port))
            data, peer = server.recvfrom(100)
            assert data == b"ping"
            server.sendto(b"pong", peer)
            assert s.recvfrom(100)[0] == b"pong"
    finally:
        c.remove(force=True)


def test_rules_removed_with_the_container(daemon, httpd):
    port = free_port()
    cid = httpd("-p", f"{port}:8000")
    table = daemon.net["table"]

    def rules():
        return subprocess.run(["nft", "list", "chain", "ip", table, "published"],
                              capture_output=True, text=True).stdout
    assert f"tcp dport {port} dnat to" in rules()
    daemon.cli("stop", "-t", "0", cid)
    assert f"tcp dport {port}" not in rules()
    daemon.cli("start", cid)
    assert f"tcp dport {port} dnat to" in rules()
    daemon.cli("rm", "-f", cid)
    assert f"tcp dport {port}" not in rules()
    with socket.socket() as s:   # and no longer held
        s.bind(("0.0.0.0", port))


def test_published_port_follows_a_disconnect(daemon):
    client = daemon.client()
    a = client.networks.create(f"pa-{os.getpid()}-{time.monotonic_ns() % 10**6}")
    b = client.networks.create(f"pb-{os.getpid()}-{time.monotonic_ns() % 10**6}")
    port = free_port()
    c = client.containers.create("busybox", ["httpd", "-f", "-p", "8000", "-h", "/etc"],
                                 network=a.name, ports={"8000/tcp": ("127.0.0.1", port)})
    try:
        b.connect(c)
        c.start()
        assert http_get("127.0.0.1", port) == c.id[:12]
        a.disconnect(c)   # the network the port pointed at
        assert http_get("127.0.0.1", port) == c.id[:12]
    finally:
        c.remove(force=True)
        a.remove()
        b.remove()
