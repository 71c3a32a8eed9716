"""OCI runtimes the daemon offers (`--runtime`, daemon.json `runtimes` and `default-runtime`).

Built in: `skiff` (skiff-runtime, run inside skiff-monitor; the default), and `runc` and
`crun` when their binaries are on PATH. More come from daemon.json's
`"runtimes": {"NAME": {"path": "...", "runtimeArgs": [...]}}` or `--add-runtime NAME=PATH`.
Any of them but `skiff` must speak runc's command line (monitor/oci_runtime.py).

    table = RuntimeTable(configured, default="skiff", state_root="/run/skiff")
    host_config["Runtime"] = table.choose(host_config)     # at create: docker's 400 if unknown
    table.write(container_dir, name)                       # runtime.json for skiff-monitor

The choice is written into the container's directory (`runtime.json`), so that the monitor
and a later clean-up know which runtime made the container whatever the daemon's settings
are by then.
"""

from __future__ import annotations

import json
import os
import shutil

from skiff.errors import InvalidArgument

OWN = "skiff"
BUILTIN_BINARIES = ("runc", "crun")
RUNTIME_FILE = "runtime.json"


class ConfigError(ValueError):
    pass


def parse_add_runtime(text: str) -> tuple[str, str]:
    """`--add-runtime NAME=PATH`."""
    name, eq, path = text.partition("=")
    if not eq or not name or not path:
        raise ConfigError(f"invalid runtime argument: {text}: expected NAME=PATH")
    return name, path


class RuntimeTable:
    def __init__(self, configured: dict | None = None, default: str | None = None,
                 state_root: str = "/run/skiff", which=shutil.which):
        self.state_root = state_root
        self.runtimes: dict[str, dict] = {OWN: {"path": "skiff-runtime"}}
        for name in BUILTIN_BINARIES:
            path = which(name)
            if path:
                self.runtimes[name] = {"path": path}
        for name, entry in (configured or {}).items():
            if name == OWN or name in BUILTIN_BINARIES:
                raise ConfigError(f"runtime name '{name}' is reserved")
            if not isinstance(entry, dict) or not entry.get("path"):
                raise ConfigError(f"runtime {name}: a path is required")
            args = entry.get("runtimeArgs") or []
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise ConfigError(f"runtime {name}: runtimeArgs must be a list of strings")
            self.runtimes[name] = {"path": entry["path"], "runtimeArgs": list(args)}
        self.default = default or OWN
        if self.default not in self.runtimes:
            raise ConfigError(f"specified default runtime '{self.default}' does not exist")

    def choose(self, host_config: dict) -> str:
        name = host_config.get("Runtime") or self.default
        if name not in self.runtimes:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")
        if name != OWN and host_config.get("Init"):
            raise InvalidArgument(f"--init is only supported by the {OWN} runtime, not {name}")
        return name

    def monitor_spec(self, name: str) -> dict | None:
        """What skiff-monitor needs to drive runtime `name`; None for skiff's own."""
        if name == OWN or name not in self.runtimes:
            return None
        entry = self.runtimes[name]
        path = entry["path"]
        if not os.path.isabs(path):
            path = shutil.which(path) or path
        return {"name": name, "path": path, "args": entry.get("runtimeArgs") or [],
                "root": os.path.join(self.state_root, f"runtime-{name}")}

    def write(self, container_dir: str, name: str) -> None:
        spec = self.monitor_spec(name)
        path = os.path.join(container_dir, RUNTIME_FILE)
        if spec is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        with open(path, "w") as f:
            json.dump(spec, f)

    def info(self) -> dict:
        """/info's Runtimes and DefaultRuntime."""
        out = {}
        for name, entry in self.runtimes.items():
            item = {"path": entry["path"]}
            if entry.get("runtimeArgs"):
                item["runtimeArgs"] = entry["runtimeArgs"]
            out[name] = item
        return {"Runtimes": out, "DefaultRuntime": self.default}
