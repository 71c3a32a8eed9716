"""network create, ls, inspect, rm, prune, connect, disconnect; port."""

from __future__ import annotations


from skiff.cli.context import StatusError

NETWORK_DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                   "CreatedAt": "CREATED AT"}


def _api_error(exc) -> StatusError:
    return StatusError(1, exc.explanation())


def _key_values(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise StatusError(125, f'invalid argument "{value}" for "--{what}" flag: '
                              "invalid key/value pair")
        out[key] = val
    return out


def create_body(opts, name: str) -> dict:
    """`network create` flags -> the POST /networks/create body (docker's checks)."""
    subnets, gateways, ranges = list(opts.subnet), list(opts.gateway), list(opts.ip_range)
    if len(gateways) > len(subnets) or len(ranges) > len(subnets):
        raise StatusError(1, "every ip-range or gateway must have a corresponding subnet")
    config = []
    for i, subnet in enumerate(subnets):
        entry = {"Subnet": subnet}
        if i < len(ranges):
            entry["IPRange"] = ranges[i]
        if i < len(gateways):
            entry["Gateway"] = gateways[i]
        config.append(entry)
    labels = {}
    for value in opts.label:
        key, _, val = value.partition("=")
        labels[key] = val
    return {"Name": name, "CheckDuplicate": True, "Driver": opts.driver or "bridge",
            "Options": _key_values(opts.opt, "opt"), "Internal": bool(opts.internal),
            "Attachable": bool(opts.attachable), "Ingress": False,
            "EnableIPv6": bool(opts.ipv6) if opts.given("ipv6") else None,
            "IPAM": {"Driver": opts.ipam_driver or "default", "Config": config,
                     "Options": _key_values(opts.ipam_opt, "ipam-opt")},
            "Labels": labels}


def cmd_network_create(cli, opts, args) -> int:
    from skiff.client.errors import APIError

    body = create_body(opts, args[0])
    if body["EnableIPv6"] is None:
        del body["EnableIPv6"]
    try:
        created = cli.client().post("/networks/create", None, body)
    except APIError as exc:
        raise _api_error(exc) from None
    cli.out(created["Id"])
    return 0


def network_fields(net: dict, trunc: bool) -> dict:
    labels = net.get("Labels") or {}
    return {"ID": net["Id"][:12] if trunc else net["Id"], "Name": net["Name"],
            "Driver": net["Driver"], "Scope": net.get("Scope", "local"),
            "IPv6": str(bool(net.get("EnableIPv6"))).lower(),
            "Internal": str(bool(net.get("Internal"))).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "CreatedAt": net.get("Created", "")}


def cmd_network_ls(cli, opts, args) -> int:
    from skiff.cli.commands.containers import filters_param, render_rows

    params = {}
    filters = filters_param(opts.filter or [])
    if filters:
        params["filters"] = filters
    nets = cli.client().get("/networks", params) or []
    nets.sort(key=lambda n: n["Name"])
    rows = [network_fields(n, not opts.no_trunc) for n in nets]
    if opts.quiet:
        for row in rows:
            cli.out(row["ID"])
        return 0
    render_rows(cli, rows, opts.format, NETWORK_DEFAULT, NETWORK_HEADERS)
    return 0


def cmd_network_inspect(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    found, errors = [], []
    for name in args:
        try:
            found.append(client.get(f"/networks/{quote_path(name)}",
                                    {"verbose": 1} if opts.verbose else None))
        except APIError as exc:
            errors.append(exc.explanation())
    from skiff.cli.commands.system import print_inspected

    return print_inspected(cli, opts.format, found, errors)


def cmd_network_rm(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    errors = []
    for name in args:
        try:
            client.request("DELETE", f"/networks/{quote_path(name)}")
            cli.out(name)
        except APIError as exc:
            if exc.status == 404 and opts.force:
                continue
            errors.append(exc.explanation())
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


def cmd_network_prune(cli, opts, args) -> int:
    from skiff.cli.commands.containers import filters_param

    if not opts.force:
        cli.err("WARNING! This will remove all custom networks not used by at least one "
                "container.")
        cli.stderr.write("Are you sure you want to continue? [y/N] ")
        cli.stderr.flush()
        if cli.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    result = cli.client().post("/networks/prune",
                               {"filters": filters_param(opts.filter or [])}) or {}
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        cli.out("Deleted Networks:")
        for name in deleted:
            cli.out(name)
    return 0


def cmd_network_connect(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    endpoint: dict = {}
    if opts.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": opts.ip}
    if opts.alias:
        endpoint["Aliases"] = list(opts.alias)
    if opts.link:
        endpoint["Links"] = list(opts.link)
    if opts.driver_opt:
        endpoint["DriverOpts"] = _key_values(opts.driver_opt, "driver-opt")
    try:
        cli.client().post(f"/networks/{quote_path(args[0])}/connect", None,
                          {"Container": args[1], "EndpointConfig": endpoint})
    except APIError as exc:
        raise _api_error(exc) from None
    return 0


def cmd_network_disconnect(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    try:
        cli.client().post(f"/networks/{quote_path(args[0])}/disconnect", None,
                          {"Container": args[1], "Force": bool(opts.force)})
    except APIError as exc:
        raise _api_error(exc) from None
    return 0


def port_lines(ports: dict, wanted: str | None = None) -> list[str]:
    """`docker port` lines: `80/tcp -> 0.0.0.0:8080`, or `0.0.0.0:8080` for one port."""
    lines = []
    if wanted:
        port, _, proto = wanted.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        for bind in ports.get(key) or []:
            lines.append(f"{bind['HostIp']}:{bind['HostPort']}")
        return lines

    def order(key):
        number, _, proto = key.partition("/")
        return (int(number), proto)
    for key in sorted(ports, key=order):
        for bind in ports[key] or []:
            lines.append(f"{key} -> {bind['HostIp']}:{bind['HostPort']}")
    return lines


def cmd_port(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    try:
        info = cli.client().get(f"/containers/{quote_path(args[0])}/json")
    except APIError as exc:
        raise _api_error(exc) from None
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    wanted = args[1] if len(args) > 1 else None
    lines = port_lines(ports, wanted)
    if wanted and not lines:
        key = wanted if "/" in wanted else wanted + "/tcp"
        raise StatusError(1, f"Error: No public port '{key}' published for {args[0]}")
    for line in lines:
        cli.out(line)
    return 0
