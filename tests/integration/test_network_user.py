"""User-defined networks through the API and the CLI: create with IPAM config, names and
aliases resolved by the embedded DNS server, connect and disconnect taking effect at once,
--internal with no way out, docker's errors, events, and nothing left behind.

Traffic goes only to the test's own containers (and the daemon's own DNS socket)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid

import docker
import pytest

from tests.integration import netfixture

pytestmark = pytest.mark.root

HTTP_GET = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 8000 | tail -n 1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pool_subnet(daemon, index: int) -> str:
    """A /28 of this daemon's pool for a test's explicit --subnet."""
    base = ipaddress.ip_network(daemon.net["pool"].split(",")[0][len("base="):])
    return str(list(base.subnets(new_prefix=28))[index])


def out(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
def net(daemon):
    """A user-defined network, removed afterwards with whatever still uses it."""
    client = daemon.client()
    made = []

    def make(**kw):
        network = client.networks.create(unique("net"), **kw)
        made.append(network)
        return network
    yield make
    for network in made:
        try:
            network.reload()
        except docker.errors.NotFound:
            continue
        for cid in network.attrs.get("Containers") or {}:
            try:
                client.containers.get(cid).remove(force=True)
            except docker.errors.NotFound:
                pass
        try:
            network.remove()
        except docker.errors.NotFound:
            pass


def server(client, network, name, alias=None):
    return client.containers.run(
        "busybox", ["httpd", "-f", "-p", "8000", "-h", "/etc"], detach=True, name=name,
        network=network.name, **({"networking_config": {network.name: client.api.
                                  create_endpoint_config(aliases=[alias])}} if alias else {}))


def test_reach_each_other_by_name_alias_and_id(daemon, net):
    client = daemon.client()
    network = net()
    web = server(client, network, unique("web"), alias="www")
    try:
        for host in (web.name, "www", web.id[:12], f"{web.name}.{network.name}"):
            text = out(daemon.cli("run", "--rm", "--network", network.name, "busybox", "sh",
                                  "-c", HTTP_GET.format(host=host)))
            assert text.strip() == web.id[:12], host
        # busybox wget by name, as a user would
        text = out(daemon.cli("run", "--rm", "--network", network.name, "busybox", "wget",
                              "-q", "-O", "-", "http://www:8000/hostname"))
        assert text.strip() == web.id[:12]
        # the resolver is the embedded one; an unknown single name is NXDOMAIN, fast
        text = out(daemon.cli("run", "--rm", "--network", network.name, "busybox", "sh", "-c",
                              "cat /etc/resolv.conf; nslookup nosuchname 127.0.0.11 || true"))
        assert "nameserver 127.0.0.11" in text
        assert "NXDOMAIN" in text or "can't find" in text
    finally:
        web.remove(force=True)


def test_names_do_not_resolve_on_the_default_bridge_or_across_networks(daemon, net):
    client = daemon.client()
    a, b = net(), net()
    web = server(client, a, unique("web"))
    try:
        result = daemon.cli("run", "--rm", "--network", b.name, "busybox", "sh", "-c",
                            f"nslookup {web.name} 127.0.0.11")
        assert result.returncode != 0
        # nor by address: networks are isolated from one another
        web.reload()
        ip = web.attrs["NetworkSettings"]["Networks"][a.name]["IPAddress"]
        result = daemon.cli("run", "--rm", "--network", b.name, "busybox", "sh", "-c",
                            HTTP_GET.format(host=ip))
        assert web.id[:12] not in result.stdout.decode()
    finally:
        web.remove(force=True)


def test_two_containers_listen_on_the_same_port(daemon, net):
    client = daemon.client()
    network = net()
    one = server(client, network, unique("one"))
    two = server(client, network, unique("two"))
    try:
        for c in (one, two):
            text = out(daemon.cli("run", "--rm", "--network", network.name, "busybox", "sh",
                                  "-c", HTTP_GET.format(host=c.name)))
            assert text.strip() == c.id[:12]
    finally:
        one.remove(force=True)
        two.remove(force=True)


def test_connect_and_disconnect_change_reachability_at_once(daemon, net):
    client = daemon.client()
    a, b = net(), net()
    web = server(client, a, unique("web"))
    probe = client.containers.run("busybox", ["sleep", "120"], detach=True, network=b.name)
    try:
        def get():
            code, output = probe.exec_run(["sh", "-c", HTTP_GET.format(host=web.name)])
            return output.decode().strip()
        assert get() != web.id[:12]
        b.connect(web, aliases=["later"])
        assert get() == web.id[:12]
        code, output = probe.exec_run(["sh", "-c", HTTP_GET.format(host="later")])
        assert output.decode().strip() == web.id[:12]
        web.reload()
        assert set(web.attrs["NetworkSettings"]["Networks"]) == {a.name, b.name}
        b.disconnect(web)
        assert get() != web.id[:12]
        web.reload()
        assert set(web.attrs["NetworkSettings"]["Networks"]) == {a.name}
        code, output = web.exec_run(["cat", "/proc/net/dev"])
        assert "eth1" not in output.decode()
    finally:
        probe.remove(force=True)
        web.remove(force=True)


def test_static_ip_mac_and_ip_range(daemon, net):
    subnet = pool_subnet(daemon, 10)
    hosts = list(ipaddress.ip_network(subnet).hosts())
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=subnet, gateway=str(hosts[-1]), iprange=str(
            ipaddress.ip_network(subnet).subnets(new_prefix=29).__next__()))])
    network = net(ipam=ipam, labels={"team": "a"},
                  options={"com.docker.network.driver.mtu": "1400"})
    network.reload()
    assert network.attrs["IPAM"]["Config"][0]["Gateway"] == str(hosts[-1])
    assert network.attrs["Labels"] == {"team": "a"}
    text = out(daemon.cli("run", "--rm", "--network", network.name, "--ip", str(hosts[8]),
                          "--mac-address", "92:d0:c6:0a:29:33", "busybox", "sh", "-c",
                          "ip -4 -o addr show eth0; cat /sys/class/net/eth0/address; "
                          "ip route; cat /sys/class/net/eth0/mtu"))
    assert f"inet {hosts[8]}/28" in text
    assert "92:d0:c6:0a:29:33" in text
    assert f"default via {hosts[-1]}" in text
    assert text.split()[-1] == "1400"   # the network's com.docker.network.driver.mtu
    text = out(daemon.cli("run", "--rm", "--network", network.name, "busybox", "ip", "-4", "-o",
                          "addr", "show", "eth0"))
    assert f"inet {hosts[0]}/28" in text   # from the range: .1 (the gateway is the last)


def test_docker_errors(daemon, net):
    client = daemon.client()
    subnet = pool_subnet(daemon, 12)
    network = net(ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=subnet)]))
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create(unique("clash"), ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=subnet)]))
    assert info.value.status_code == 403
    assert "Pool overlaps with other one on this address space" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create(network.name)
    assert info.value.status_code == 409
    assert f"network with name {network.name} already exists" in str(info.value)
    with pytest.raises(docker.errors.NotFound) as info:
        client.networks.get("nosuchnet")
    assert "network nosuchnet not found" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.get("bridge").remove()
    assert info.value.status_code == 403
    assert "bridge is a pre-defined network and cannot be removed" in str(info.value)
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, network=network.name)
    try:
        with pytest.raises(docker.errors.APIError) as info:
            network.remove()
        assert info.value.status_code == 403
        assert "has active endpoints" in str(info.value)
        with pytest.raises(docker.errors.APIError) as info:
            network.connect(c)
        assert "already exists in network" in str(info.value)
        result = daemon.cli("run", "--rm", "--ip", "10.0.0.5", "busybox", "true")
        assert result.returncode == 125
        assert b"user specified IP address is supported on user defined networks only" in \
            result.stderr
    finally:
        c.remove(force=True)
    network.remove()


def test_internal_network_has_no_way_out(daemon, net):
    internal = net(internal=True)
    internal.reload()
    assert internal.attrs["Internal"] is True
    gateway = str(ipaddress.ip_interface(daemon.net["bip"]).ip)
    # the default bridge's gateway (an address of the host) answers from the default bridge
    # ...
    ok = daemon.cli("run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", gateway)
    assert ok.returncode == 0
    # ... but nothing past its own bridge answers from the internal network
    text = out(daemon.cli("run", "--rm", "--network", internal.name, "busybox", "sh", "-c",
                          f"ip route; ping -c 1 -W 2 {gateway} && echo REACHED || echo cut"))
    assert "default" not in text
    assert "cut" in text and "REACHED" not in text
    rules = subprocess.run(["nft", "list", "table", "ip", daemon.net["table"]],
                           capture_output=True, text=True).stdout
    bridge = "br-" + internal.id[:12]
    assert f'iifname "{bridge}" oifname != "{bridge}" drop' in rules


def test_cli_network_commands_and_events(daemon):
    name = unique("clinet")
    since = str(time.time())
    created = daemon.cli("network", "create", "--label", "k=v", "--subnet",
                         pool_subnet(daemon, 14), name)
    nid = out(created).strip()
    assert len(nid) == 64
    try:
        text = out(daemon.cli("network", "ls"))
        header, *rows = text.splitlines()
        assert header.split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        names = [r.split()[1] for r in rows]
        assert {"bridge", "host", "none", name} <= set(names)
        assert out(daemon.cli("network", "ls", "-q", "--filter", f"name={name}")).split() == \
            [nid[:12]]
        doc = json.loads(out(daemon.cli("network", "inspect", name)))[0]
        assert doc["Id"] == nid and doc["Labels"] == {"k": "v"} and doc["Driver"] == "bridge"
        cid = out(daemon.cli("run", "-d", "busybox", "sleep", "60")).strip()
        out(daemon.cli("network", "connect", "--alias", "al", name, cid))
        doc = json.loads(out(daemon.cli("network", "inspect", name)))[0]
        assert cid in doc["Containers"]
        out(daemon.cli("network", "disconnect", name, cid))
        out(daemon.cli("rm", "-f", cid))
        result = daemon.cli("network", "rm", name, "nosuch")
        assert result.stdout.decode() == name + "\n"
        assert b"network nosuch not found" in result.stderr and result.returncode == 1
    finally:
        daemon.cli("network", "rm", name)
    events = out(daemon.cli("events", "--since", since, "--until", str(time.time() + 1),
                            "--filter", "type=network", "--format", "{{.Action}}"))
    actions = events.split()
    assert actions[0] == "create" and actions[-1] == "destroy"
    assert "connect" in actions and "disconnect" in actions
    assert netfixture.settled(lambda: netfixture.links_of({"br-" + nid[:12]}), []) == []


def test_prune_removes_unused_networks_only(daemon):
    client = daemon.client()
    used = client.networks.create(unique("used"))
    unused = client.networks.create(unique("unused"))
    c = client.containers.create("busybox", ["true"], network=used.name)
    try:
        result = client.networks.prune()
        assert unused.name in result["NetworksDeleted"]
        assert used.name not in result["NetworksDeleted"]
        names = {n.name for n in client.networks.list()}
        assert {"bridge", "host", "none", used.name} <= names and unused.name not in names
    finally:
        c.remove()
        used.remove()
    assert netfixture.settled(lambda: netfixture.links_of(
        {"br-" + used.id[:12], "br-" + unused.id[:12]}), []) == []


def test_dns_options_hosts_and_names(daemon, net):
    network = net()
    text = out(daemon.cli("run", "--rm", "--network", network.name, "--hostname", "box",
                          "--domainname", "example.test", "--dns-search", "corp.test",
                          "--dns-option", "ndots:2", "--add-host", "db:10.1.2.3",
                          "--add-host", "gw:host-gateway", "busybox", "sh", "-c",
                          "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; "
                          "hostname"))
    resolv, hosts, hostname = text.split("---\n")
    assert "nameserver 127.0.0.11" in resolv
    assert "search corp.test" in resolv and "options ndots:2" in resolv
    assert "10.1.2.3\tdb" in hosts
    assert f"{ipaddress.ip_interface(daemon.net['bip']).ip}\tgw" in hosts
    assert "box.example.test box" in hosts
    assert hostname.strip() == "box"
    text = out(daemon.cli("run", "--rm", "--dns", "10.9.9.9", "busybox", "cat",
                          "/etc/resolv.conf"))
    assert "nameserver 10.9.9.9" in text


def test_removed_network_and_no_network_left(daemon):
    client = daemon.client()
    network = client.networks.create(unique("short"))
    c = client.containers.create("busybox", ["cat", "/proc/net/dev"], network=network.name)
    try:
        network.remove()   # a stopped container does not keep its network (as docker)
        with pytest.raises(docker.errors.NotFound) as info:
            c.start()
        assert f"network {network.name} not found" in str(info.value)
    finally:
        c.remove(force=True)
    # disconnected from its only network, a container still starts, with lo alone
    other = client.networks.create(unique("only"))
    c = client.containers.create("busybox", ["cat", "/proc/net/dev"], network=other.name)
    try:
        other.disconnect(c)
        c.start()
        assert c.wait()["StatusCode"] == 0
        lines = c.logs().decode().splitlines()[2:]
        assert [line.split(":")[0].strip() for line in lines] == ["lo"]
    finally:
        c.remove(force=True)
        other.remove()


def test_skiff_run_on_two_networks(daemon, net):
    a, b = net(), net()
    text = out(daemon.cli("run", "--rm", "--network", a.name, "--network", b.name, "busybox",
                          "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"))
    assert text.split() == ["eth0", "eth1", "lo"]
