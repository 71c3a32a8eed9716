"""skiffd killed with -9 while containers run on networks: the survivors keep their addresses,
published ports and names (the DNS sockets come back), and what belonged to a container that
died meanwhile (its veth, namespace file, DNAT rules) is gone after the restart. A start that
fails leaves nothing behind either."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tests.integration import netfixture

pytestmark = pytest.mark.root

HTTP_GET = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 8000 | tail -n 1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def rules(daemon) -> str:
    return subprocess.run(["nft", "list", "table", "ip", daemon.net["table"]],
                          capture_output=True, text=True).stdout


def test_kill_9_restart_keeps_survivors_and_cleans_the_dead(daemon):
    client = daemon.client()
    network = client.networks.create(f"crash-{uuid.uuid4().hex[:8]}")
    bridge = "br-" + network.id[:12]
    keep_port, dead_port = free_port(), free_port()
    keep = client.containers.run("busybox", ["httpd", "-f", "-p", "8000", "-h", "/etc"],
                                 detach=True, name=f"keep-{uuid.uuid4().hex[:6]}",
                                 network=network.name, ports={"8000/tcp": keep_port})
    dead = client.containers.run("busybox", ["sleep", "300"], detach=True,
                                 network=network.name, ports={"8000/tcp": dead_port})
    probe = client.containers.run("busybox", ["sleep", "300"], detach=True,
                                  network=network.name)
    try:
        dead.reload()
        dead_pid = dead.attrs["State"]["Pid"]
        dead_netns = dead.attrs["NetworkSettings"]["SandboxKey"]
        assert os.path.exists(dead_netns)
        assert f"tcp dport {dead_port} dnat" in rules(daemon)
        assert len(netfixture.links_of({bridge})) == 4   # the bridge and three veths

        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
        os.kill(dead_pid, signal.SIGKILL)    # dies while nobody is there to clean up
        time.sleep(0.5)
        daemon.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            dead.reload()
            if dead.attrs["State"]["Status"] == "exited":
                break
            time.sleep(0.1)
        assert dead.attrs["State"]["Status"] == "exited"
        # the dead one's veth, namespace file and DNAT rule are gone ...
        assert not os.path.exists(dead_netns)
        assert f"tcp dport {dead_port}" not in rules(daemon)
        assert netfixture.settled(lambda: len(netfixture.links_of({bridge})), 3) == 3
        # ... the survivors answer by name (DNS is back) and on their published port
        code, output = probe.exec_run(["sh", "-c", HTTP_GET.format(host=keep.name)])
        assert output.decode().strip() == keep.id[:12]
        with socket.socket() as s, pytest.raises(OSError):   # held again after the restart
            s.bind(("0.0.0.0", keep_port))
        with socket.create_connection(("127.0.0.1", keep_port), timeout=5) as s:
            s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.decode().strip().endswith(keep.id[:12])
    finally:
        for c in (keep, dead, probe):
            c.remove(force=True)
        network.remove()
    assert netfixture.settled(lambda: netfixture.links_of({bridge}), []) == []
    assert netfixture.netns_files(daemon.exec_root) == []
    text = rules(daemon)
    assert bridge not in text and "dnat to" not in text


def test_failed_start_leaves_nothing(daemon):
    client = daemon.client()
    port = free_port()
    holder = socket.socket()
    holder.bind(("0.0.0.0", port))
    holder.listen()
    try:
        bridge = daemon.net["bridge"]
        before = [n for n in netfixture.links_of({bridge}) if n != bridge]
        result = daemon.cli("run", "--name", f"fail-{uuid.uuid4().hex[:6]}", "-p",
                            f"{port}:80", "busybox", "true")
        assert result.returncode == 125
        assert b"port is already allocated" in result.stderr
        assert netfixture.settled(
            lambda: [n for n in netfixture.links_of({bridge}) if n != bridge], before) == before
        assert netfixture.netns_files(daemon.exec_root) == []
        assert f"dport {port}" not in rules(daemon)
    finally:
        holder.close()
        client.containers.prune()


def test_everything_removed_leaves_no_link_rule_or_file(daemon):
    client = daemon.client()
    networks = [client.networks.create(f"gone-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    containers = [client.containers.run("busybox", ["sleep", "60"], detach=True,
                                        network=n.name, ports={"80/tcp": None})
                  for n in networks]
    networks[0].connect(containers[1])
    for c in containers:
        c.remove(force=True)
    for n in networks:
        n.remove()
    bridges = {"br-" + n.id[:12] for n in networks}
    assert netfixture.settled(lambda: netfixture.links_of(bridges), []) == []
    # of the default bridge only the bridge itself may stay (as docker0 does), with no veth
    assert netfixture.settled(lambda: netfixture.links_of({daemon.net["bridge"]}),
                              [daemon.net["bridge"]]) in ([], [daemon.net["bridge"]])
    assert netfixture.netns_files(daemon.exec_root) == []
    text = rules(daemon)
    assert "dnat to" not in text and not any(b in text for b in bridges)


def test_a_stopped_daemon_with_nothing_running_leaves_no_bridge_or_table(daemon):
    result = daemon.cli("run", "--rm", "busybox", "true")   # makes the default bridge
    assert result.returncode == 0, result.stderr
    assert netfixture.links_of({daemon.net["bridge"]}) == [daemon.net["bridge"]]
    assert netfixture.table_exists(daemon.net["table"])
    daemon.stop()
    try:
        assert netfixture.links_of({daemon.net["bridge"]}) == []
        assert not netfixture.table_exists(daemon.net["table"])
    finally:
        daemon.start()
    # and the next container makes them again
    result = daemon.cli("run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0")
    assert result.returncode == 0 and b"inet " in result.stdout, result.stderr
