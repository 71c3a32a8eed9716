"""From an image config and a Docker create request to a runtime bundle (config.json + files).

`container_process` and `build_spec` are pure (unit-tested as values); `write_bundle` puts the
result on disk.
"""

from __future__ import annotations

import json
import os

from skiff.engine.mounts import rootfs_propagation
from skiff.errors import InvalidArgument
from skiff.oci import spec as oci_spec

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOTFS_MOUNTS_ANNOTATION = "org.skiff.rootfs.mounts"


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    return list(value)


def container_process(image_config: dict, create: dict) -> tuple[list[str], list[str], str]:
    """args, env and working dir as docker computes them.

    An Entrypoint given at create time replaces the image's and drops the image's Cmd, as
    `docker run --entrypoint` does."""
    entrypoint = create.get("Entrypoint")
    cmd = create.get("Cmd")
    if entrypoint is not None:
        entry = _as_list(entrypoint)
        if entry == [""]:
            entry = []
        args = entry + (_as_list(cmd) or [])
    else:
        entry = _as_list(image_config.get("Entrypoint")) or []
        args = entry + (_as_list(cmd) if cmd else (_as_list(image_config.get("Cmd")) or []))
    if not args:
        raise InvalidArgument("No command specified")
    env = merge_env(image_config.get("Env") or [], create.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    cwd = create.get("WorkingDir") or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an "
                              "absolute path")
    return args, env, cwd


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """KEY=VALUE lists; a later KEY replaces an earlier one in place."""
    merged: dict[str, str] = {}
    for item in list(base) + list(overrides):
        key = item.split("=", 1)[0]
        if "=" not in item:
            continue  # `-e KEY` with KEY unset on the client: docker drops it
        merged[key] = item
    return list(merged.values())


def build_spec(*, args: list[str], env: list[str], cwd: str, user: tuple[int, int, list[int]],
               hostname: str, tty: bool, open_stdin: bool, rootfs_mounts: list[dict],
               extra_mounts: list[dict], cgroups_path: str, labels: dict | None = None,
               host_config: dict | None = None, lookup=None, facts=None,
               warnings: list | None = None) -> dict:
    """config.json for a container. `host_config` (the create request's HostConfig) is
    translated by skiff.engine.hostconfig (`lookup(name)` resolves `container:NAME` modes,
    `facts` describes the host); docker's warnings are appended to `warnings` if given."""
    spec = oci_spec.default_spec(args=args, env=env, cwd=cwd, user=user, hostname=hostname,
                                 terminal=tty, rlimits=default_rlimits())
    spec["root"] = {"path": "rootfs", "readonly": False}
    defaults = len(spec.get("mounts", []))
    spec["mounts"] = list(spec.get("mounts", [])) + extra_mounts
    spec["linux"]["cgroupsPath"] = cgroups_path
    annotations = dict(spec.get("annotations") or {})
    annotations[ROOTFS_MOUNTS_ANNOTATION] = json.dumps(rootfs_mounts)
    spec["annotations"] = annotations
    if host_config:
        from skiff.engine import hostconfig
        group_file = None
        if host_config.get("GroupAdd"):
            group_file = image_file(rootfs_mounts, "etc/group")
        found = hostconfig.apply(spec, host_config, facts=facts, lookup=lookup,
                                 group_file=group_file)
        if warnings is not None:
            warnings.extend(found)
    spec["mounts"] = order_mounts(spec["mounts"], defaults)
    propagation = rootfs_propagation(spec["mounts"][defaults:])   # shared/slave binds
    if propagation:
        spec["linux"]["rootfsPropagation"] = propagation
    return spec


def order_mounts(mounts: list[dict], first: int) -> list[dict]:
    """The mounts from index `first` on (the container's own: /etc files, volumes, binds,
    tmpfs) as docker orders them: a parent before what is mounted below it; the last entry
    for a destination wins (a volume over /etc/hosts replaces skiff's file)."""
    own: dict[str, dict] = {}
    for mount in mounts[first:]:
        own.pop(mount["destination"], None)
        own[mount["destination"]] = mount
    ordered = sorted(own.values(), key=lambda m: m["destination"].rstrip("/").count("/"))
    return mounts[:first] + ordered


def image_file(rootfs_mounts: list[dict], relpath: str) -> str | None:
    """The text of a file of the image (upper dir first, then the lower dirs, top first);
    None when no layer has it. Symlinks are not followed out of a layer."""
    dirs = []
    for mount in rootfs_mounts:
        for option in mount.get("options", []):
            if option.startswith("upperdir="):
                dirs.insert(0, option[len("upperdir="):])
            elif option.startswith("lowerdir="):
                dirs.extend(option[len("lowerdir="):].split(":"))
        if mount.get("type") == "bind" and mount.get("source"):
            dirs.append(mount["source"])
    for d in dirs:
        path = os.path.join(d, relpath)
        if os.path.islink(path):
            continue
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            continue
    return None


def default_rlimits() -> list[dict]:
    """Docker's default open-files limit, but never above our own hard limit: raising it
    needs CAP_SYS_RESOURCE, which some hosts withhold."""
    import resource

    wanted = oci_spec.DEFAULT_RLIMITS[0]["hard"]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return [{"type": "RLIMIT_NOFILE", "soft": wanted, "hard": wanted}]


def etc_files(hostname: str, host_resolv: str) -> dict[str, str]:
    """The contents of /etc/hosts, /etc/hostname and /etc/resolv.conf for a container whose
    network holds only loopback."""
    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
             "ff02::2\tip6-allrouters\n")
    return {"hosts": hosts, "hostname": hostname + "\n", "resolv.conf": resolv_conf(host_resolv)}


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback resolvers (unreachable from a container),
    falling back to public ones as docker does."""
    lines, servers = [], 0
    for line in host_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver" and len(fields) > 1:
            if fields[1].startswith("127.") or fields[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def etc_mounts(container_dir: str) -> list[dict]:
    return [{"destination": f"/etc/{name}", "type": "bind",
             "source": os.path.join(container_dir, name), "options": ["rbind", "rprivate"]}
            for name in ("resolv.conf", "hostname", "hosts")]


def write_bundle(container_dir: str, spec: dict, files: dict[str, str]) -> None:
    os.makedirs(os.path.join(container_dir, "rootfs"), exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(container_dir, name), "w") as f:
            f.write(text)
    tmp = os.path.join(container_dir, "config.json.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(spec))  # compact: the C encoder (indent would use the Python one)
    os.replace(tmp, os.path.join(container_dir, "config.json"))
