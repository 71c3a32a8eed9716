"""Which endpoint serves a registry domain, and whether plain HTTP may be used for it. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DOCKER_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_HOST = "registry-1.docker.io"
# The key docker's config.json uses for Docker Hub credentials.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Endpoint:
    host: str           # host[:port] to connect to
    secure: bool        # HTTPS only; False: HTTPS first, plain HTTP as the fallback
    domain: str         # the reference's domain (docker.io, localhost:5000)


def split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        addr, _, rest = host[1:].partition("]")
        return addr, int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    name, _ = split_host_port(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_insecure(host: str, insecure: tuple[str, ...] | list[str] = ()) -> bool:
    """docker's rule: loopback registries (127.0.0.0/8, ::1, localhost) and those listed in
    `insecure-registries` (host[:port] or a CIDR) may be reached over plain HTTP."""
    if is_loopback(host):
        return True
    name, _ = split_host_port(host)
    for entry in insecure:
        if entry == host or entry == name:
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def endpoint_for(domain: str, insecure: tuple[str, ...] | list[str] = ()) -> Endpoint:
    host = DOCKER_HUB_HOST if domain in DOCKER_HUB_DOMAINS else domain
    return Endpoint(host=host, secure=not is_insecure(host, insecure), domain=domain)


def auth_key(domain: str) -> str:
    """The key of `auths` in docker's config.json for a registry domain."""
    return DOCKER_HUB_AUTH_KEY if domain in DOCKER_HUB_DOMAINS else domain
