"""Networking flags of `run` and `network create`, and `port`'s lines, as values."""

import pytest

from skiff.cli import commands
from skiff.cli import config as cfg
from skiff.cli.commands import networks as netcmd
from skiff.cli.context import StatusError
from skiff.cli.flags import parse
from skiff.cli.spec import BY_NAME


def run_body(*argv):
    opts, args = parse(BY_NAME["run"], list(argv), commands.validators("run"))
    return cfg.build_create(opts, args[0], args[1:], detach=True)[0]


def test_run_network_flags():
    body = run_body("--network", "app", "--ip", "10.5.0.9", "--network-alias", "db",
                    "--network-alias", "pg", "--mac-address", "92:d0:c6:0a:29:33",
                    "--dns", "10.0.0.2", "--dns-search", "corp", "--dns-option", "ndots:2",
                    "--add-host", "gw:host-gateway", "--domainname", "example.test",
                    "-p", "127.0.0.1:8080:80", "-p", "53/udp", "busybox")
    host = body["HostConfig"]
    assert host["NetworkMode"] == "app"
    assert host["Dns"] == ["10.0.0.2"] and host["DnsSearch"] == ["corp"]
    assert host["DnsOptions"] == ["ndots:2"] and host["ExtraHosts"] == ["gw:host-gateway"]
    assert body["Domainname"] == "example.test"
    assert body["NetworkingConfig"]["EndpointsConfig"]["app"] == {
        "IPAMConfig": {"IPv4Address": "10.5.0.9"}, "Aliases": ["db", "pg"],
        "MacAddress": "92:d0:c6:0a:29:33"}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "", "HostPort": ""}]}


def test_default_network_endpoint_is_the_bridge():
    body = run_body("--mac-address", "92:d0:c6:0a:29:33", "busybox")
    assert "NetworkMode" not in body["HostConfig"]
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "bridge": {"MacAddress": "92:d0:c6:0a:29:33"}}


def test_network_create_body():
    opts, args = parse(BY_NAME["network create"], [
        "--subnet", "10.5.0.0/24", "--gateway", "10.5.0.254", "--ip-range", "10.5.0.128/25",
        "--internal", "--label", "a=b", "-o", "com.docker.network.driver.mtu=1400", "n1"])
    body = netcmd.create_body(opts, args[0])
    assert body["Name"] == "n1" and body["Driver"] == "bridge" and body["Internal"] is True
    assert body["IPAM"]["Config"] == [{"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.128/25",
                                       "Gateway": "10.5.0.254"}]
    assert body["Labels"] == {"a": "b"}
    assert body["Options"] == {"com.docker.network.driver.mtu": "1400"}


def test_gateway_needs_a_subnet():
    opts, args = parse(BY_NAME["network create"], ["--gateway", "10.5.0.1", "n1"])
    with pytest.raises(StatusError):
        netcmd.create_body(opts, args[0])


def test_port_lines():
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
             "443/tcp": None, "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert netcmd.port_lines(ports) == ["53/udp -> 127.0.0.1:5353",
                                        "80/tcp -> 0.0.0.0:8080"]
    assert netcmd.port_lines(ports, "80") == ["0.0.0.0:8080"]
    assert netcmd.port_lines(ports, "53/udp") == ["127.0.0.1:5353"]
    assert netcmd.port_lines(ports, "443") == []


def test_repeated_network_flag():
    body = run_body("--network", "a", "--network", "b", "--network-alias", "x", "busybox")
    assert body["HostConfig"]["NetworkMode"] == "a"
    assert body["NetworkingConfig"]["EndpointsConfig"] == {"a": {"Aliases": ["x"]}, "b": {}}
    assert "NetworkMode" not in run_body("busybox")["HostConfig"]
