"""Container networking end to end, through skiffd and real kernels: the default bridge,
--network none|host|container:NAME, NetworkSettings in inspect, and nothing left behind.

Traffic goes only to loopback, the host's own address, and the test's own containers."""

from __future__ import annotations

import ipaddress
import os
import subprocess

import pytest

from tests.integration import netfixture

pytestmark = pytest.mark.root


def run(daemon, *args, **kw):
    result = daemon.cli("run", "--rm", *args, **kw)
    return result


def out(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def interfaces(text: str) -> list[str]:
    return sorted(line.split(":")[0].strip() for line in text.splitlines()[2:])


def host_links() -> set[str]:
    text = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in text.splitlines()}


def bridge_mac(name: str) -> str:
    with open(f"/sys/class/net/{name}/address") as f:
        return f.read().strip()


def test_default_bridge_gives_eth0_with_an_address_and_a_route(daemon):
    text = out(run(daemon, "busybox", "sh", "-c",
                   "cat /proc/net/dev; echo ---; ip -4 addr show eth0; echo ---; ip route; "
                   "echo ---; grep eth0 /proc/net/if_inet6; true"))
    devices, addr, routes, inet6 = text.split("---\n")
    assert inet6 == ""   # IPv4 only, as docker's bridge: no link-local IPv6 on eth0
    assert interfaces(devices) == ["eth0", "lo"]
    subnet = ipaddress.ip_interface(daemon.net["bip"]).network
    gateway = str(ipaddress.ip_interface(daemon.net["bip"]).ip)
    ip = addr.split("inet ")[1].split()[0]
    assert ipaddress.ip_interface(ip).network == subnet
    assert f"default via {gateway}" in routes


def test_network_none_has_only_lo(daemon):
    text = out(run(daemon, "--network", "none", "busybox", "cat", "/proc/net/dev"))
    assert interfaces(text) == ["lo"]


def test_host_mode_sees_the_hosts_interfaces(daemon):
    import socket

    assert out(run(daemon, "--network", "host", "busybox", "hostname")).strip() == \
        socket.gethostname()   # docker's: the host's name, /etc/hosts and resolv.conf
    text = out(run(daemon, "--network", "host", "busybox", "cat", "/proc/net/dev"))
    with open("/proc/net/dev") as f:
        mine = interfaces(f.read())
    theirs = interfaces(text)
    assert "eth0" in theirs or len(theirs) > 1
    assert set(theirs) & set(mine) == set(theirs) or len(set(theirs) & set(mine)) > 1


def test_container_reaches_host_and_the_gateway_answers(daemon):
    gateway = str(ipaddress.ip_interface(daemon.net["bip"]).ip)
    result = run(daemon, "busybox", "ping", "-c", "1", "-W", "2", gateway)
    assert result.returncode == 0, result.stdout + result.stderr


def test_inspect_network_settings_and_addresses_released(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        c.reload()
        settings = c.attrs["NetworkSettings"]
        assert c.attrs["HostConfig"]["NetworkMode"] == "bridge"
        subnet = ipaddress.ip_interface(daemon.net["bip"]).network
        ip = ipaddress.ip_address(settings["IPAddress"])
        assert ip in subnet and settings["IPPrefixLen"] == subnet.prefixlen
        assert settings["Gateway"] == str(ipaddress.ip_interface(daemon.net["bip"]).ip)
        assert settings["MacAddress"] == "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
        bridge = settings["Networks"]["bridge"]
        assert bridge["IPAddress"] == settings["IPAddress"]
        assert bridge["NetworkID"] == client.networks.get("bridge").id
        assert settings["SandboxKey"].startswith(daemon.exec_root)
        # the address is what the container has, and the bridge's inspect lists it
        exit_code, output = c.exec_run(["ip", "-4", "-o", "addr", "show", "eth0"])
        assert f"{ip}/{subnet.prefixlen}" in output.decode()
        net = client.networks.get("bridge")
        assert c.id in net.attrs["Containers"]
        assert net.attrs["IPAM"]["Config"] == [{"Subnet": str(subnet),
                                                "Gateway": settings["Gateway"]}]
        veths = netfixture.links_of({daemon.net["bridge"]})
        assert len([v for v in veths if v != daemon.net["bridge"]]) == 1
        mac = bridge_mac(daemon.net["bridge"])
        assert mac not in ("00:00:00:00:00:00", settings["MacAddress"])
    finally:
        c.remove(force=True)
    # the bridge keeps its own MAC when its ports come and go (containers' ARP entries for
    # their gateway stay right)
    assert netfixture.settled(lambda: bridge_mac(daemon.net["bridge"]), mac) == mac
    # the veth and the namespace file went with it
    bridge = daemon.net["bridge"]
    assert netfixture.settled(lambda: netfixture.links_of({bridge}), [bridge]) == [bridge]
    assert netfixture.netns_files(daemon.exec_root) == []


def test_two_containers_get_different_addresses_and_talk(daemon):
    client = daemon.client()
    server = client.containers.run("busybox", ["nc", "-l", "-p", "80", "-e", "echo", "hi"],
                                   detach=True)
    try:
        server.reload()
        ip = server.attrs["NetworkSettings"]["IPAddress"]
        text = out(run(daemon, "busybox", "sh", "-c",
                       f"ip -4 -o addr show eth0; nc {ip} 80 </dev/null"))
        assert ip + "/" not in text.splitlines()[0]
        assert text.splitlines()[-1] == "hi"
    finally:
        server.remove(force=True)


def test_container_network_mode_shares_the_namespace(daemon):
    client = daemon.client()
    first = client.containers.run("busybox", ["sleep", "60"], detach=True, name="netowner")
    try:
        first.reload()
        ip = first.attrs["NetworkSettings"]["IPAddress"]
        text = out(run(daemon, "--network", "container:netowner", "busybox", "sh", "-c",
                       "ip -4 -o addr show eth0; grep -c $(hostname) /etc/hosts; hostname"))
        assert f"inet {ip}/" in text
        assert text.splitlines()[-1] == first.id[:12]   # the owner's hostname, as docker
        assert text.splitlines()[-2] == "1"             # and its /etc/hosts (with its IP)
        second = client.containers.create("busybox", ["true"],
                                          network_mode="container:netowner")
        second.reload()
        assert second.attrs["HostConfig"]["NetworkMode"] == "container:netowner"
        assert second.attrs["NetworkSettings"]["Networks"] == {}
        second.remove()
    finally:
        first.remove(force=True)


def test_container_mode_needs_a_running_container(daemon):
    client = daemon.client()
    stopped = client.containers.create("busybox", ["true"], name="netstopped")
    try:
        result = run(daemon, "--network", "container:netstopped", "busybox", "true")
        assert result.returncode == 125
        assert b"non running container" in result.stderr
    finally:
        stopped.remove()


def test_unknown_network_is_docker_404(daemon):
    result = run(daemon, "--network", "nosuchnet", "busybox", "true")
    assert result.returncode == 125
    assert b"network nosuchnet not found" in result.stderr
    client = daemon.client()
    assert not [c for c in client.containers.list(all=True)
                if c.attrs["HostConfig"]["NetworkMode"] == "nosuchnet"]


def test_outbound_is_masqueraded_in_skiffs_own_table(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        rules = subprocess.run(["nft", "list", "table", "ip", daemon.net["table"]],
                               capture_output=True, text=True).stdout
        subnet = str(ipaddress.ip_interface(daemon.net["bip"]).network)
        assert f"ip saddr {subnet} oifname != \"{daemon.net['bridge']}\" masquerade" in rules
    finally:
        c.remove(force=True)


def test_restart_keeps_networking_and_kill_9_of_skiffd_keeps_the_container_reachable(daemon):
    client = daemon.client()
    server = client.containers.run("busybox", ["httpd", "-f", "-p", "8000", "-h", "/etc"],
                                   detach=True)
    try:
        server.reload()
        ip = server.attrs["NetworkSettings"]["IPAddress"]
        os.kill(daemon.proc.pid, 9)
        daemon.proc.wait()
        daemon.start()
        server.reload()
        assert server.attrs["State"]["Running"]
        assert server.attrs["NetworkSettings"]["IPAddress"] == ip
        text = out(run(daemon, "busybox", "wget", "-q", "-O", "-", f"http://{ip}:8000/hostname"))
        assert text.strip() == server.id[:12]
        server.restart(timeout=1)
        server.reload()
        ip2 = server.attrs["NetworkSettings"]["IPAddress"]
        text = out(run(daemon, "busybox", "wget", "-q", "-O", "-", f"http://{ip2}:8000/hostname"))
        assert text.strip() == server.id[:12]
    finally:
        server.remove(force=True)
    assert netfixture.netns_files(daemon.exec_root) == []


def test_containers_starting_at_once_on_a_fresh_bridge(daemon):
    """The default bridge is made by the first container that needs it: eight starting at
    once after a daemon restart (which removed it) all get it, each its own address."""
    from concurrent.futures import ThreadPoolExecutor

    daemon.stop()     # nothing runs: the daemon removes its bridge and table on the way out
    daemon.start()
    assert netfixture.links_of({daemon.net["bridge"]}) == []
    client = daemon.client()
    made = [client.containers.create("busybox", ["sleep", "60"]) for _ in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: c.start(), made))
        addresses = set()
        for c in made:
            c.reload()
            assert c.attrs["State"]["Running"]
            addresses.add(c.attrs["NetworkSettings"]["IPAddress"])
        assert len(addresses) == 8 and "" not in addresses
        code, output = made[0].exec_run(["ping", "-c", "1", "-W", "2",
                                         made[7].attrs["NetworkSettings"]["IPAddress"]])
        assert code == 0, output
    finally:
        for c in made:
            c.remove(force=True)


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_other_runtimes_join_the_namespace_file(daemon, runtime):
    """The namespace is made by skiffd and named in config.json, so runc and crun get the
    same network as skiff's own runtime."""
    import shutil

    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    client = daemon.client()
    server = client.containers.run("busybox", ["httpd", "-f", "-p", "8000", "-h", "/etc"],
                                   detach=True)
    try:
        server.reload()
        ip = server.attrs["NetworkSettings"]["IPAddress"]
        result = daemon.cli("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c",
                            "ip -4 -o addr show eth0; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n'"
                            f" | nc -w 3 {ip} 8000 | tail -n 1")
        if result.returncode != 0 and runtime == "crun" and \
                b"cgroup" in result.stderr.lower():
            pytest.skip("crun refuses this host's cgroup layout")
        text = out(result)
        assert "inet " in text.splitlines()[0]
        assert text.splitlines()[-1] == server.id[:12]
    finally:
        server.remove(force=True)


def test_ipv6_is_off_in_the_container_not_on_the_host(daemon):
    def host_setting():
        try:
            with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6") as f:
                return f.read()
        except OSError:
            return None
    before = host_setting()
    text = out(run(daemon, "busybox", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"))
    assert text.strip() == "1"
    assert host_setting() == before   # set in the container's namespace only
