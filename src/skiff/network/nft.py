"""skiff's nftables table: masquerading, isolation, internal networks and published ports.

`render(table, networks, ports)` is pure: the whole table as an `nft -f` script that replaces
the previous one in one transaction (the kernel applies a script all or nothing), so the
rules never stand half-changed and never drift from skiff's records. `apply` runs it.

    script = render("skiff", [BridgeRules("skiff0", "10.88.0.0/16")],
                    [PortRule("tcp", "", 8080, "10.88.0.2", 80)])

Published ports are DNAT in prerouting (from other hosts and containers) and in output (from
the host itself, 127.0.0.1 included: the bridge has route_localnet set, and loopback sources
are masqueraded on their way into the bridge).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

NFT = "nft"


@dataclass(frozen=True)
class BridgeRules:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


@dataclass(frozen=True)
class PortRule:
    proto: str          # tcp | udp
    host_ip: str        # "" or 0.0.0.0: every local address
    host_port: int
    container_ip: str
    container_port: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def render(table: str, networks: list[BridgeRules], ports: list[PortRule]) -> str:
    lines = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{"]
    lines += ["  chain published {"]
    for p in ports:
        match = f"ip daddr {p.host_ip} " if p.host_ip not in ("", "0.0.0.0") else ""
        lines.append(f"    {match}{p.proto} dport {p.host_port} dnat to "
                     f"{p.container_ip}:{p.container_port}")
    lines += ["  }",
              "  chain prerouting {",
              "    type nat hook prerouting priority dstnat; policy accept;",
              "    fib daddr type local jump published",
              "  }",
              "  chain output {",
              "    type nat hook output priority -100; policy accept;",
              "    fib daddr type local jump published",
              "  }",
              "  chain postrouting {",
              "    type nat hook postrouting priority srcnat; policy accept;"]
    for n in networks:
        br = _quote(n.bridge)
        # from 127.0.0.1 to a published port: the container could not answer a loopback
        # source; and a container reaching a published port of its own network (hairpin)
        lines.append(f"    oifname {br} ip saddr 127.0.0.0/8 masquerade")
        lines.append(f"    oifname {br} ip saddr {n.subnet} ct status dnat masquerade")
        if n.masquerade and not n.internal:
            lines.append(f"    ip saddr {n.subnet} oifname != {br} masquerade")
    lines += ["  }",
              "  chain forward {",
              "    type filter hook forward priority filter; policy accept;"]
    for n in networks:
        if n.internal:
            br = _quote(n.bridge)
            lines.append(f"    iifname {br} oifname != {br} drop")
            lines.append(f"    oifname {br} iifname != {br} drop")
    # docker's isolation: containers of one network do not reach those of another
    for a in networks:
        for b in networks:
            if a.bridge != b.bridge:
                lines.append(f"    iifname {_quote(a.bridge)} oifname {_quote(b.bridge)} drop")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def delete_script(table: str) -> str:
    return f"table ip {table} {{}}\ndelete table ip {table}\n"


def apply(script: str) -> None:
    result = subprocess.run([NFT, "-f", "-"], input=script.encode(), capture_output=True)
    if result.returncode != 0:
        raise OSError(f"nft: {result.stderr.decode().strip()}")


def delete(table: str) -> None:
    apply(delete_script(table))
