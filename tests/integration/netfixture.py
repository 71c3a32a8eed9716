"""Each test daemon's own bridge, subnet, address pool and nft table, and their removal.

Subnets are drawn at random from 10.128.0.0/9 (never docker's 172.17.0.0/16 nor skiff's
defaults), skipping any the host routes already, so that daemons of developers running
tests side by side do not meet.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess


def _routed() -> list:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True).stdout
    nets = []
    for line in out.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("broadcast", "local", "unreachable"):
            first = line.split()[1]
        try:
            if "/" in first:
                nets.append(ipaddress.ip_network(first, strict=False))
        except ValueError:
            continue
    return nets


def pick(tag: str) -> dict:
    """{bridge, bip, pool, table} for one daemon; `tag` is a short unique string."""
    routed = _routed()
    while True:
        second = random.randint(128, 254)
        third = random.randint(0, 254)
        block = ipaddress.ip_network(f"10.{second}.{third}.0/24")
        pool = ipaddress.ip_network(f"10.{second}.{third + 1}.0/24") if third < 254 else None
        if pool is None or any(block.overlaps(r) or pool.overlaps(r) for r in routed):
            continue
        break
    suffix = tag[-8:].lower().replace("_", "")
    return {"bridge": f"skt{suffix}"[:15], "bip": f"10.{second}.{third}.1/24",
            "pool": f"base={pool},size=28", "table": f"skifftest_{suffix}"}


def flags(net: dict) -> list[str]:
    return ["--bridge", net["bridge"], "--bip", net["bip"], "--default-address-pool",
            net["pool"], "--nft-table", net["table"]]


def links_of(bridges) -> list[str]:
    """Links enslaved to any of `bridges`, and the bridges themselves, that exist."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        master = line.split(" master ")[1].split()[0] if " master " in line else None
        if name in bridges or master in bridges:
            found.append(name)
    return found


def table_exists(table: str) -> bool:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True
                          ).returncode == 0


def cleanup(net: dict, bridges=()) -> None:
    """Remove the daemon's bridges (their veths go with them) and its nft table."""
    names = {net["bridge"], *bridges}
    for name in links_of(names):
        subprocess.run(["ip", "link", "del", name], stderr=subprocess.DEVNULL)
    subprocess.run(["nft", "delete", "table", "ip", net["table"]], stderr=subprocess.DEVNULL)


def bridges_of_daemon(client) -> list[str]:
    """The Linux bridges of a daemon's networks (asked before it stops)."""
    names = []
    for net in client.networks.list():
        attrs = net.attrs
        if attrs.get("Driver") != "bridge":
            continue
        names.append((attrs.get("Options") or {}).get("com.docker.network.bridge.name") or
                     "br-" + attrs["Id"][:12])
    return names


def netns_files(exec_root: str) -> list[str]:
    try:
        return os.listdir(os.path.join(exec_root, "netns"))
    except FileNotFoundError:
        return []


def settled(probe, want, timeout: float = 5.0):
    """probe() once it equals `want` (or its last value after `timeout`): veths go with
    their namespace, which the kernel tears down a moment after the container's end."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
