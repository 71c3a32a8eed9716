"""Published ports as values (docker's port keys and host port ranges), and the free host
port a binding gets."""

from __future__ import annotations

import random
import socket

from skiff.errors import Conflict, InvalidArgument


def parse_port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid port specification: \"{key}\"")
    if proto == "sctp":
        raise InvalidArgument("sctp port publishing is not supported by skiff")
    return int(port), proto


def parse_host_ports(text: str) -> tuple[int, int]:
    """A HostPort: "" (any free port), "8080", or a range "8000-8010" to pick one from."""
    if not text:
        return 0, 0
    low, sep, high = text.partition("-")
    try:
        lo, hi = int(low), int(high) if sep else int(low)
    except ValueError:
        raise InvalidArgument(f"invalid hostPort: {text}") from None
    if not (0 < lo <= hi < 65536):
        raise InvalidArgument(f"invalid hostPort: {text}")
    return lo, hi


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            text = f.read().split()
    except OSError:
        text = []
    try:
        return int(text[0]), int(text[1])
    except (IndexError, ValueError):
        return 32768, 60999


def reserve(proto: str, host_ip: str, port: int) -> socket.socket:
    """A socket bound (never listening) to the host port, as docker holds its published
    ports: nothing else on the host can take the port while the container publishes it, and
    what reaches it is DNAT'ed to the container before any socket is looked up."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        sock.bind((host_ip or "0.0.0.0", port))
    except BaseException:
        sock.close()
        raise
    return sock


def free_port(proto: str, host_ip: str, low: int, high: int,
              taken: set) -> tuple[int, socket.socket]:
    """A host port nobody holds and skiff has not published yet, with the socket that now
    holds it (docker's error when there is none)."""
    explicit = bool(low)
    if not low:
        low, high = ephemeral_range()
    candidates = range(low, high + 1)
    if not explicit:
        start = random.randint(low, high)
        candidates = list(range(start, high + 1)) + list(range(low, start))
    for port in candidates:
        if (proto, port) in taken:
            continue
        try:
            return port, reserve(proto, host_ip, port)
        except OSError:
            continue
    where = f"{host_ip or '0.0.0.0'}:{low}" + (f"-{high}" if high != low else "")
    raise Conflict(f"driver failed programming external connectivity on endpoint: Bind for "
                   f"{where} failed: port is already allocated")
