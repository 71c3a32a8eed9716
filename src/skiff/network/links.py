"""Bridges, veth pairs, addresses and routes through netlink (pyroute2).

Every function blocks (netlink round trips of well under a millisecond each) and must run
outside the asyncio loop's thread: pyroute2's synchronous API runs an event loop of its own.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import socket

from skiff.network import netns


class BridgeMissing(OSError):
    pass


def _ipr():
    from pyroute2 import IPRoute  # imported when networking is first used, not by the CLI

    return IPRoute()


def host_ifname(container_id: str, network_id: str) -> str:
    """The host end of a container's veth on one network: stable, so it can be found and
    removed after a crash (15 characters at most, the kernel's limit)."""
    digest = hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()
    return "sk" + digest[:12]


def exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def has_ports(bridge: str) -> bool:
    """Whether any link is enslaved to `bridge` (False when there is no such bridge)."""
    try:
        return bool(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except OSError:
        return False


def set_sysctl(path: str, value: str) -> None:
    try:
        with open(os.path.join("/proc/sys", path), "w") as f:
            f.write(value)
    except OSError:
        pass  # a host without it (no IPv6, an older kernel) does without


def random_mac() -> str:
    """A random locally administered unicast MAC (02:xx:..)."""
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def ensure_bridge(name: str, gateway: str, prefixlen: int, *, mtu: int | None = None) -> None:
    """The bridge `name` up with `gateway/prefixlen` on it (created if missing)."""
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            extra = {"mtu": mtu} if mtu else {}
            try:
                # A MAC of its own, set: a bridge left to take its lowest port's changes MAC
                # as containers come and go (00:00:.. once the last leaves), and the
                # containers' ARP entries for their gateway go stale (docker sets one too).
                ipr.link("add", ifname=name, kind="bridge", address=random_mac(), **extra)
            except Exception as exc:   # made meanwhile by someone else: fine
                if getattr(exc, "code", None) != errno.EEXIST:
                    raise
            found = ipr.link_lookup(ifname=name)
        index = found[0]
        link = ipr.get_links(index)[0]
        if link.get_attr("IFLA_ADDRESS") in (None, "00:00:00:00:00:00"):
            ipr.link("set", index=index, address=random_mac())   # made by an older skiff
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in ipr.get_addr(index=index, family=2)}
        if (gateway, prefixlen) not in have:
            try:
                ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            except Exception as exc:
                if getattr(exc, "code", None) != errno.EEXIST:
                    raise
        ipr.link("set", index=index, state="up")
    # Published ports answer on 127.0.0.1 through DNAT to a container: the kernel must route
    # loopback-sourced packets out of the bridge (skiff's nft table masquerades them).
    set_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    set_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1")


def delete_link(name: str) -> None:
    """Delete the link `name` (a bridge, or either end of a veth pair: both go) if it
    exists; safe to call from any thread, the asyncio loop's included."""
    from skiff.network.rtnl import Rtnl

    try:
        index = socket.if_nametoindex(name)
    except OSError:
        return
    with Rtnl() as rtnl:
        try:
            rtnl.delete_link(index)
        except OSError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENOENT):   # gone meanwhile
                raise


def attach(netns_path: str, bridge: str, host_name: str, ifname: str, ip: str,
           prefixlen: int, mac: str, gateway: str | None, mtu: int | None = None) -> None:
    """A veth pair: `host_name` on `bridge`, `ifname` in the namespace with `ip` and `mac`,
    `lo` and `ifname` up, and a default route via `gateway` when one is given (hand-built
    rtnetlink requests: see rtnl.py for why)."""
    from skiff.network.rtnl import Rtnl

    try:
        master = socket.if_nametoindex(bridge)
    except OSError:
        raise BridgeMissing(f"bridge {bridge} is missing") from None
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Rtnl() as rtnl:
            try:
                rtnl.veth(host_name, master, ifname, mac, fd, mtu)
            except OSError as exc:
                # the same container's previous veth, still waiting for the kernel to tear
                # its namespace down (a restart right after an exit): remove it now
                if exc.errno != errno.EEXIST:
                    raise
                delete_link(host_name)
                rtnl.veth(host_name, master, ifname, mac, fd, mtu)
    finally:
        os.close(fd)
    try:
        netns.run_in(netns_path, lambda: _configure_inside(ifname, ip, prefixlen, gateway))
    except BaseException:
        delete_link(host_name)
        raise


def _configure_inside(ifname: str, ip: str, prefixlen: int, gateway: str | None) -> None:
    from skiff.network.rtnl import LOOPBACK_INDEX, Rtnl

    index = socket.if_nametoindex(ifname)
    # IPv4-only networks, as docker's: no IPv6 link-local address nor router solicitations
    # from the container (net sysctls are those of the opening thread's namespace)
    set_sysctl(f"net/ipv6/conf/{ifname}/disable_ipv6", "1")
    with Rtnl() as rtnl:
        rtnl.link_up(LOOPBACK_INDEX)
        rtnl.add_address(index, ip, prefixlen)
        rtnl.link_up(index)
        if gateway:
            rtnl.default_route(gateway)


def lo_up(netns_path: str) -> None:
    from skiff.network.rtnl import LOOPBACK_INDEX, Rtnl

    def up():
        with Rtnl() as rtnl:
            rtnl.link_up(LOOPBACK_INDEX)
    netns.run_in(netns_path, up)


def host_routes() -> list:
    """Networks the host routes already (a subnet chosen from the pools avoids them)."""
    out = []
    with _ipr() as ipr:
        for r in ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"]:
                out.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
    return out
