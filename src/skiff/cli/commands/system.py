"""`version`, `info`, `inspect`."""

from __future__ import annotations

import json
import platform
import sys

from skiff.cli.context import StatusError

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def go_arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return _ARCH.get(machine, machine)


def _aligned(lines: list[str], minwidth: int = 20, padding: int = 1) -> str:
    """Lines whose cells are split by "\\t", aligned in blocks of consecutive tabbed lines
    (Go's tabwriter as `docker version` configures it)."""
    from skiff.cli.format import table

    out = []
    block: list[list[str]] = []
    for line in lines + [None]:
        if line is not None and "\t" in line:
            block.append(line.split("\t"))
            continue
        if block:
            out.append(table(block, minwidth, padding).rstrip("\n"))
            block = []
        if line is not None:
            out.append(line)
    return "\n".join(out) + "\n"


def _apply_format(cli, fmt: str, data) -> bool:
    """Print `data` with `--format`; False when no format was given."""
    if not fmt:
        return False
    if fmt.strip() == "json":
        cli.out(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        return True
    from skiff.cli import template

    try:
        cli.out(template.render(template.unescape(fmt), data))
    except template.TemplateError as exc:
        raise StatusError(1, str(exc)) from None
    return True


# -- version ---------------------------------------------------------------------------------


def client_version() -> dict:
    from skiff import __version__
    from skiff.client.client import max_api_version

    return {
        "Version": __version__,
        "ApiVersion": max_api_version(),
        "DefaultAPIVersion": max_api_version(),
        "PythonVersion": platform.python_version(),
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": go_arch(),
        "Context": "default",
    }


def version_text(client: dict, server: dict | None) -> str:
    lines = [
        "Client:",
        f" Version:\t{client['Version']}",
        f" API version:\t{client['ApiVersion']}"
        + (f" (downgraded from {client['DefaultAPIVersion']})"
           if client["ApiVersion"] != client["DefaultAPIVersion"] else ""),
        f" Python version:\t{client['PythonVersion']}",
        f" OS/Arch:\t{client['Os']}/{client['Arch']}",
        f" Context:\t{client['Context']}",
    ]
    if server is not None:
        name = (server.get("Platform") or {}).get("Name") or ""
        lines += ["", "Server:" + (f" {name}" if name else "")]
        components = server.get("Components") or [{
            "Name": "Engine", "Version": server.get("Version", ""),
            "Details": {k: server.get(k, "") for k in (
                "ApiVersion", "MinAPIVersion", "GitCommit", "GoVersion", "Os", "Arch",
                "KernelVersion", "Experimental", "BuildTime")},
        }]
        for component in components:
            details = component.get("Details") or {}
            lines.append(f" {component.get('Name', '')}:")
            if component.get("Name") == "Engine":
                lines += [
                    f"  Version:\t{component.get('Version', server.get('Version', ''))}",
                    f"  API version:\t{details.get('ApiVersion', server.get('ApiVersion', ''))}"
                    f" (minimum version {details.get('MinAPIVersion', server.get('MinAPIVersion', ''))})",
                ]
                for label, key in (("Go version", "GoVersion"), ("Git commit", "GitCommit"),
                                   ("Built", "BuildTime")):
                    if details.get(key, server.get(key)):
                        lines.append(f"  {label}:\t{details.get(key, server.get(key))}")
                lines.append(f"  OS/Arch:\t{details.get('Os', server.get('Os', ''))}/"
                             f"{details.get('Arch', server.get('Arch', ''))}")
                experimental = details.get("Experimental", server.get("Experimental", False))
                if isinstance(experimental, bool):
                    experimental = "true" if experimental else "false"
                lines.append(f"  Experimental:\t{experimental}")
            else:
                lines.append(f"  Version:\t{component.get('Version', '')}")
                for key in sorted(details):
                    lines.append(f"  {key}:\t{details[key]}")
    return _aligned(lines)


def cmd_version(cli, opts, args) -> int:
    from skiff.client.errors import ClientError

    client_info = client_version()
    server = None
    error = None
    try:
        client = cli.client()
        client_info["ApiVersion"] = client.api_version
        server = client.get("/version") or {}
    except ClientError as exc:
        error = exc
    data = {"Client": client_info, "Server": server}
    if not _apply_format(cli, opts.format, data):
        cli.out(version_text(client_info, server), end="")
    if error is not None:
        explanation = getattr(error, "explanation", None)
        raise StatusError(1, explanation() if callable(explanation) else error.message)
    return 0


# -- info ------------------------------------------------------------------------------------


def info_text(info: dict, debug: bool = False) -> str:
    from skiff import __version__
    from skiff.cli.format import bytes_size

    def flag(value) -> str:
        return "true" if value else "false"

    out = [
        "Client:",
        f" Version:    {__version__}",
        " Context:    default",
        f" Debug Mode: {flag(debug)}",
        "",
        "Server:",
        f" Containers: {info.get('Containers', 0)}",
        f"  Running: {info.get('ContainersRunning', 0)}",
        f"  Paused: {info.get('ContainersPaused', 0)}",
        f"  Stopped: {info.get('ContainersStopped', 0)}",
        f" Images: {info.get('Images', 0)}",
        f" Server Version: {info.get('ServerVersion', '')}",
    ]
    if info.get("Driver"):
        out.append(f" Storage Driver: {info['Driver']}")
        for pair in info.get("DriverStatus") or []:
            if len(pair) == 2:
                out.append(f"  {pair[0]}: {pair[1]}")
    for label, key in (("Logging Driver", "LoggingDriver"), ("Cgroup Driver", "CgroupDriver"),
                       ("Cgroup Version", "CgroupVersion")):
        if info.get(key):
            out.append(f" {label}: {info[key]}")
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        out.append(f" Runtimes: {' '.join(sorted(runtimes))}")
    if info.get("DefaultRuntime"):
        out.append(f" Default Runtime: {info['DefaultRuntime']}")
    if info.get("InitBinary"):
        out.append(f" Init Binary: {info['InitBinary']}")
    security = info.get("SecurityOptions") or []
    if security:
        out.append(" Security Options:")
        for option in security:
            for part in option.split(","):
                key, _, value = part.partition("=")
                if key == "name":
                    out.append(f"  {value}")
                elif value:
                    out.append(f"   {key.capitalize()}: {value}")
    for label, key in (("Kernel Version", "KernelVersion"), ("Operating System", "OperatingSystem"),
                       ("OSType", "OSType"), ("Architecture", "Architecture"),
                       ("CPUs", "NCPU")):
        if info.get(key) not in (None, ""):
            out.append(f" {label}: {info[key]}")
    if info.get("MemTotal"):
        out.append(f" Total Memory: {bytes_size(info['MemTotal'])}")
    for label, key in (("Name", "Name"), ("ID", "ID"), ("Docker Root Dir", "DockerRootDir")):
        if info.get(key):
            out.append(f" {label}: {info[key]}")
    out.append(f" Debug Mode: {flag(info.get('Debug'))}")
    out.append(f" Experimental: {flag(info.get('ExperimentalBuild'))}")
    registries = (info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    if registries:
        out.append(" Insecure Registries:")
        out += [f"  {cidr}" for cidr in registries]
    out.append(f" Live Restore Enabled: {flag(info.get('LiveRestoreEnabled'))}")
    return "\n".join(out) + "\n"


def cmd_info(cli, opts, args) -> int:
    client = cli.client()
    info = client.get("/info") or {}
    if _apply_format(cli, opts.format, info):
        return 0
    cli.out(info_text(info, cli.debug), end="")
    for warning in info.get("Warnings") or []:
        cli.err(warning)
    return 0


# -- inspect ---------------------------------------------------------------------------------

_KINDS = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}


def cmd_inspect(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    if opts.type and opts.type not in _KINDS:
        raise StatusError(1, f'"{opts.type}" is not a valid value for --type')
    kinds = [opts.type] if opts.type else list(_KINDS)
    found = []
    errors = []
    for name in args:
        element = None
        last_error = None
        for kind in kinds:
            params = {"size": 1} if (kind == "container" and opts.size) else None
            try:
                element = client.get(_KINDS[kind].format(quote_path(name)), params)
                break
            except APIError as exc:
                if exc.status not in (404, 400):
                    last_error = exc
                    break
                last_error = exc
        if element is None:
            if opts.type and last_error is not None:
                errors.append(last_error.explanation())
            elif last_error is not None and last_error.status not in (404, 400):
                errors.append(last_error.explanation())
            else:
                errors.append(f"Error: No such object: {name}")
            continue
        found.append(element)
    return print_inspected(cli, opts.format, found, errors)


def print_inspected(cli, format_text: str | None, found: list, errors: list[str]) -> int:
    """What every `inspect` prints: each object through --format, else all as a JSON list;
    then the errors of those not found, with status 1 (docker's way)."""
    if format_text:
        from skiff.cli import template

        body = template.unescape(format_text)
        try:
            for element in found:
                cli.out(template.render(body, element))
        except template.TemplateError as exc:
            raise StatusError(1, str(exc)) from None
    else:
        cli.out(json.dumps(found, indent=4, ensure_ascii=False) if found else "[]")
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0
