"""A container's network as inspect and `ps` show it (NetworkSettings, Ports), built from the
NetworkService's records. `self` is the NetworkService."""

from __future__ import annotations

from skiff.engine.networks import is_user_defined, network_mode
from skiff.errors import NotFound
from skiff.network import ports


def network_settings(self, record) -> dict:
    """A container's NetworkSettings, as docker's inspect shows them."""
    running = bool(record.state.get("Running"))
    networks = {}
    mode = network_mode(record.config["HostConfig"])
    if mode in ("host", "none"):
        net = self.find(mode)
        networks[mode] = endpoint_settings(net, None, running, self)
    for ep in self._endpoints(container_id=record.id):
        try:
            net = self.find(ep["network_id"])
        except NotFound:
            continue
        networks[net["Name"]] = endpoint_settings(net, ep, running, self)
    out = {"Bridge": "", "SandboxID": record.id if running else "",
           "SandboxKey": self.netns_path(record.id) if running and self._endpoints(
               container_id=record.id) else "",
           "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
           "Ports": self.ports(record), "SecondaryIPAddresses": None,
           "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
           "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
           "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": networks}
    default = networks.get("bridge")
    if default is not None:
        for key in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
            out[key] = default[key]
    return out


def summary(self, record) -> dict:
    """What a `GET /containers/json` row shows of the container's network."""
    settings = network_settings(self, record)
    return {"Ports": summary_ports(self, record),
            "HostConfig": {"NetworkMode": network_mode(record.config["HostConfig"])
                           if record.config["HostConfig"].get("NetworkMode") else "none"},
            "NetworkSettings": {"Networks": settings["Networks"]}}


def summary_ports(self, record) -> list[dict]:
    """`docker ps` Ports of the container."""
    out = []
    for key, binds in self.ports(record).items():
        port, proto = ports.parse_port_key(key)
        if not binds:
            out.append({"PrivatePort": port, "Type": proto})
            continue
        for b in binds:
            out.append({"IP": b["HostIp"], "PrivatePort": port,
                        "PublicPort": int(b["HostPort"]), "Type": proto})
    return out


def endpoint_settings(net: dict, ep: dict | None, running: bool, service) -> dict:
    out = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
           "DriverOpts": None, "GwPriority": 0, "NetworkID": net["Id"], "EndpointID": "",
           "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
           "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}
    if ep is None:
        return out
    if ep.get("static_ip"):
        out["IPAMConfig"] = {"IPv4Address": ep["static_ip"]}
    out["Aliases"] = ep.get("aliases") or None
    out["Links"] = ep.get("links") or None
    out["DriverOpts"] = ep.get("driver_opts") or None
    if ep.get("static_mac"):
        out["MacAddress"] = ep["static_mac"]
    if running and ep.get("ip"):
        config = service._ipam(net)
        out.update(EndpointID=ep["endpoint_id"], IPAddress=ep["ip"],
                   IPPrefixLen=config.subnet.prefixlen,
                   Gateway="" if net["Internal"] else str(config.gateway),
                   MacAddress=ep.get("mac") or out["MacAddress"])
        if is_user_defined(net):
            cid = ep["container_id"]
            out["DNSNames"] = [service._container_name(cid)] + \
                list(ep.get("aliases") or []) + [cid[:12]]
    return out
