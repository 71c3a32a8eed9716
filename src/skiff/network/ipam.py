"""Address management, pure: subnets from default pools, addresses within a subnet, MACs.

    pools = parse_pools(["base=10.90.0.0/16,size=24"])
    subnet = next_subnet(pools, taken=[ip_network("10.90.0.0/24")])   # 10.90.1.0/24
    ip = next_address(subnet, gateway, used={...})

Every function takes what is in use as an argument and returns a value; the engine keeps the
state (in SQLite) and calls these inside its transaction.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from skiff.errors import Forbidden, InvalidArgument

# Not docker's 172.17.0.0/16 (nor its other default pools), so both engines share a host.
DEFAULT_BRIDGE_CIDR = "10.88.0.1/16"
DEFAULT_POOLS = ("base=10.89.0.0/16,size=24",)


@dataclass(frozen=True)
class Pool:
    base: ipaddress.IPv4Network
    size: int

    def subnets(self):
        return self.base.subnets(new_prefix=self.size)


def parse_pool(text: str) -> Pool:
    """docker's --default-address-pool value: `base=10.10.0.0/16,size=24`."""
    fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
    if "base" not in fields:
        raise InvalidArgument(f"invalid default address pool {text!r}: base is missing")
    base = parse_subnet(fields["base"])
    size = int(fields.get("size") or base.prefixlen)
    if not base.prefixlen <= size <= 30:
        raise InvalidArgument(f"invalid default address pool {text!r}: size {size} must be "
                              f"between {base.prefixlen} and 30")
    return Pool(base, size)


def parse_pools(texts) -> list[Pool]:
    return [parse_pool(t) for t in texts]


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text}: invalid CIDR address: {text}") from None
    if net.version != 4:
        raise InvalidArgument(f"invalid subnet {text}: only IPv4 networks are supported")
    return net


def parse_address(text: str, what: str = "IP address") -> ipaddress.IPv4Address:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if ip.version != 4:
        raise InvalidArgument(f"invalid {what}: {text}: only IPv4 is supported")
    return ip


def overlaps(net: ipaddress.IPv4Network, others) -> bool:
    return any(net.overlaps(o) for o in others)


def next_subnet(pools: list[Pool], taken) -> ipaddress.IPv4Network:
    """The first subnet of the pools that overlaps nothing taken (docker's order)."""
    taken = list(taken)
    for pool in pools:
        for candidate in pool.subnets():
            if not overlaps(candidate, taken):
                return candidate
    raise Forbidden("all predefined address pools have been fully subnetted")


@dataclass(frozen=True)
class IPAMConfig:
    """One IPAM config entry of a network, checked (docker's Subnet/IPRange/Gateway)."""
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ip_range: ipaddress.IPv4Network | None = None

    def to_wire(self) -> dict:
        out = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        return out


def ipam_config(entry: dict, subnet: ipaddress.IPv4Network | None = None) -> IPAMConfig:
    """Check one entry of a create request's IPAM.Config (with `subnet` chosen from the pools
    when the entry has none)."""
    if entry.get("Subnet"):
        subnet = parse_subnet(entry["Subnet"])
    if subnet is None:
        raise InvalidArgument("a subnet is required")
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {subnet}: the prefix is too long to hold "
                              "addresses")
    ip_range = None
    if entry.get("IPRange"):
        ip_range = parse_subnet(entry["IPRange"])
        if not ip_range.subnet_of(subnet):
            raise InvalidArgument(f"invalid pool request: ip-range {ip_range} is not within "
                                  f"subnet {subnet}")
    if entry.get("Gateway"):
        gateway = parse_address(entry["Gateway"], "gateway address")
        if gateway not in subnet:
            raise InvalidArgument(f"no matching subnet for gateway {gateway}")
    else:
        gateway = subnet.network_address + 1
    return IPAMConfig(subnet, gateway, ip_range)


def next_address(config: IPAMConfig, used) -> ipaddress.IPv4Address:
    """The lowest free address of the range (or subnet): not the network, broadcast or
    gateway address, nor any in `used`."""
    used = {ipaddress.ip_address(str(u)) for u in used}
    used.add(config.gateway)
    scope = config.ip_range or config.subnet
    for host in scope.hosts():
        if host in config.subnet and host != config.subnet.broadcast_address \
                and host not in used:
            return host
    raise Forbidden(f"no available IPv4 addresses on this network's address pools: "
                    f"{config.subnet}")


def check_static_address(config: IPAMConfig, ip: ipaddress.IPv4Address, used) -> None:
    if ip not in config.subnet:
        raise InvalidArgument(f"invalid endpoint settings:\nno configured subnet or ip-range "
                              f"contain the IP address {ip}")
    if ip == config.gateway or ip in (config.subnet.network_address,
                                      config.subnet.broadcast_address):
        raise Forbidden("Address already in use")
    if str(ip) in {str(u) for u in used}:
        raise Forbidden("Address already in use")


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """A locally administered MAC made of the address (docker's former 02:42:<ip> scheme),
    so that an address always comes with the same MAC."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


def parse_mac(text: str) -> str:
    parts = text.lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise InvalidArgument(f"invalid MAC address: {text}")
    return ":".join(parts)
