"""`run`/`create` networking flags beyond those of cli/config.py: --ip, --network-alias,
--mac-address, --dns, --dns-search, --dns-option, --domainname -> the create request."""

from __future__ import annotations


def apply_network_options(opts, config: dict, host: dict) -> None:
    networks = [n for n in (opts.network if isinstance(opts.network, list)
                            else [opts.network] if opts.network else []) if n]
    if networks:
        host["NetworkMode"] = networks[0]
    elif "NetworkMode" in host:
        del host["NetworkMode"]
    if opts.dns:
        host["Dns"] = list(opts.dns)
    if opts.dns_search:
        host["DnsSearch"] = list(opts.dns_search)
    if opts.dns_option:
        host["DnsOptions"] = list(opts.dns_option)
    if opts.domainname:
        config["Domainname"] = opts.domainname
    endpoint: dict = {}
    if opts.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": opts.ip}
    if opts.network_alias:
        endpoint["Aliases"] = list(opts.network_alias)
    if opts.mac_address:
        endpoint["MacAddress"] = opts.mac_address
    endpoints = config.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})
    for extra in networks[1:]:   # --network a --network b: joined at create, as docker's
        endpoints.setdefault(extra, {})
    if endpoint:   # the daemon refuses --ip and aliases on networks that cannot have them
        network = host.get("NetworkMode") or "default"
        endpoints["bridge" if network == "default" else network] = endpoint
