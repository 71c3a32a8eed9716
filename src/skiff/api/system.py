"""/_ping, /version, /info, /events."""

from __future__ import annotations

import json
import os
import platform

from skiff import __version__
from skiff.api.http import Response, StreamingResponse, json_response
from skiff.wire import version as wire_version

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def go_arch() -> str:
    machine = platform.machine()
    return ARCH.get(machine, machine)


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def routes(engine):
    async def ping(request):
        return Response(200, b"OK", content_type="text/plain; charset=utf-8",
                        headers={"Builder-Version": "1", "Swarm": "inactive",
                                 "Cache-Control": "no-cache, no-store, must-revalidate",
                                 "Pragma": "no-cache"})

    async def version(request):
        uname = os.uname()
        return json_response({
            "Platform": {"Name": "skiff"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": {
                "ApiVersion": wire_version.API_VERSION,
                "MinAPIVersion": wire_version.MIN_API_VERSION, "Os": "linux",
                "Arch": go_arch(), "KernelVersion": uname.release}}],
            "Version": __version__, "ApiVersion": wire_version.API_VERSION,
            "MinAPIVersion": wire_version.MIN_API_VERSION, "GitCommit": "skiff",
            "GoVersion": f"python{platform.python_version()}", "Os": "linux",
            "Arch": go_arch(), "KernelVersion": uname.release, "Experimental": False,
            "BuildTime": "",
        })

    async def info(request):
        from skiff.api import registry_config

        uname = os.uname()
        records = engine.containers.records.list()
        running = sum(1 for r in records if r.state.get("Running"))
        paused = sum(1 for r in records if r.state.get("Paused"))
        cgv = cgroup_version()
        return json_response({
            "ID": engine.daemon_id if hasattr(engine, "daemon_id") else "skiff",
            "Containers": len(records), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(records) - running - paused,
            "Images": len(engine.images.list()), "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none", "null"],
                        "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": cgv == "2", "CpuCfsPeriod": True,
            "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
            "IPv4Forwarding": True, "Debug": False, "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": cgv, "NEventsListener": engine.events.listeners(),
            "KernelVersion": uname.release, "OperatingSystem": _os_name(), "OSType": "linux",
            "OSVersion": "", "Architecture": platform.machine(), "NCPU": os.cpu_count(),
            "MemTotal": _mem_total(), "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config.info(engine),
            "DockerRootDir": engine.config.root, "HttpProxy": "", "HttpsProxy": "",
            "NoProxy": "", "Name": uname.nodename, "Labels": [], "ExperimentalBuild": False,
            "ServerVersion": __version__, **engine.runtimes.info(),   # Runtimes, DefaultRuntime
            "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": "",
                      "NodeAddr": "", "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin"] +
            (["name=cgroupns"] if cgv == "2" else []),
            "Warnings": [],
        })

    async def events(request):
        from skiff.wire import filters as wire_filters

        since = _time_arg(request.arg("since"))
        until = _time_arg(request.arg("until"))
        filters = wire_filters.parse_filters(request.arg("filters"))
        stream = engine.events.subscribe(since_ns=since, until_ns=until, filters=filters)

        async def body():
            async for event in stream:
                yield json.dumps(event).encode() + b"\n"

        return StreamingResponse(body())

    return [("GET", "/_ping", ping), ("GET", "/version", version), ("GET", "/info", info),
            ("GET", "/events", events)]


def _time_arg(text: str | None) -> int | None:
    """`since`/`until`: Unix seconds with an optional fraction (what the docker CLI sends),
    or RFC 3339."""
    if not text:
        return None
    from skiff.errors import InvalidArgument
    from skiff.timefmt import parse_rfc3339

    try:
        if "T" in text:
            return int(parse_rfc3339(text) * 1e9)
        seconds, _, frac = text.partition(".")
        return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp: {text!r}") from None


def _now() -> str:
    from skiff.timefmt import rfc3339_nano

    return rfc3339_nano()


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
