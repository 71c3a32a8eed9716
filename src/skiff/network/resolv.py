"""A container's resolv.conf with --dns, --dns-search and --dns-option applied (pure)."""

from __future__ import annotations


def custom_resolv(text: str, host_config: dict, embedded: bool = False) -> str:
    """resolv.conf with --dns, --dns-search and --dns-option replacing the host's lines."""
    dns = host_config.get("Dns") or []
    search = host_config.get("DnsSearch") or []
    options = host_config.get("DnsOptions") or []
    if not (dns or search or options):
        return text
    lines = text.splitlines()
    if dns and not embedded:
        lines = [line for line in lines if not line.startswith("nameserver")] + \
            [f"nameserver {d}" for d in dns]
    if search:
        lines = [line for line in lines if not line.startswith(("search", "domain"))]
        if search != ["."]:
            lines.append("search " + " ".join(search))
    if options:
        lines = [line for line in lines if not line.startswith("options")] + \
            ["options " + " ".join(options)]
    return "\n".join(lines) + "\n"
