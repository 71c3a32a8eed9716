"""A skiff bundle made runnable by any OCI runtime (runc, crun).

skiff-runtime reads a few things from annotations that other runtimes ignore: the root
filesystem's mounts (it mounts the overlay itself, inside the container's mount namespace),
the default seccomp filter (applied when config.json has no `linux.seccomp`, unless
"unconfined") and `--init`. For another runtime:

    config = portable_config(skiff_config, rootfs_dir)   # pure
    mount_rootfs(skiff_config, rootfs_dir)               # the overlay, on the host
    ... runc create/start/delete ...
    unmount_rootfs(rootfs_dir)

`portable_config` points `root.path` at the mounted rootfs, writes the default filter out as
an OCI `linux.seccomp` (the same decisions, as a list of errno rules) and refuses what the
other runtime cannot do for us (`--init`, whose PID-1 reaper is skiff-runtime's own).
"""

from __future__ import annotations

import copy
import json
import os

from skiff.errors import RuntimeFailure

from . import profile as _profile
from .plan import INIT_ANNOTATION, ROOTFS_MOUNTS_ANNOTATION, SECCOMP_ANNOTATION

_NATIVE_ARCHES = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                  "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}


def default_seccomp(capabilities) -> dict:
    """skiff's default filter (runtime/profile.py) as an OCI `linux.seccomp`: allow by
    default, errno rules for what docker's profile keeps from the container. `clone` with
    any new-namespace flag is refused with one rule per flag (rules on one syscall are
    alternatives). `personality` is not filtered here: its allow-list is a conjunction of
    inequalities, which the OCI format cannot state in a blocklist."""
    syscalls = []
    for names, errno_ret, condition in _profile.default_rules(capabilities):
        if condition is None:
            syscalls.append({"names": list(names), "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno_ret})
        elif condition[0] == "arg_any_bit":
            _kind, index, mask = condition
            bit = 1
            while bit <= mask:
                if mask & bit:
                    syscalls.append({"names": list(names), "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": errno_ret,
                                     "args": [{"index": index, "value": bit, "valueTwo": bit,
                                               "op": "SCMP_CMP_MASKED_EQ"}]})
                bit <<= 1
    arches = _NATIVE_ARCHES.get(os.uname().machine, [])
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches, "syscalls": syscalls}


_SYSFS_BIND = {"destination": "/sys", "type": "bind", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}


def portable_config(config: dict, rootfs_dir: str) -> dict:
    out = copy.deepcopy(config)
    annotations = dict(out.get("annotations") or {})
    if annotations.get(INIT_ANNOTATION) == "true":
        raise RuntimeFailure("--init is only supported by the skiff runtime (its PID 1 "
                             "reaper is part of skiff-runtime)")
    out["root"] = dict(out.get("root") or {}, path=rootfs_dir)
    linux = out.setdefault("linux", {})
    if not linux.get("seccomp") and annotations.get(SECCOMP_ANNOTATION) != "unconfined":
        caps = (out.get("process") or {}).get("capabilities")
        bounding = _profile_caps(caps)
        linux["seccomp"] = default_seccomp(bounding)
    if mapped_root(out) is not None and any(n.get("type") == "network" and n.get("path")
                                            for n in linux.get("namespaces") or ()):
        # sysfs may only be mounted from the user namespace that owns the network
        # namespace, and this one was made outside (by the engine): bind the host's
        # /sys read-only instead, as docker does where it cannot mount sysfs
        out["mounts"] = [_SYSFS_BIND if m.get("type") == "sysfs" else m
                         for m in out.get("mounts") or ()]
    for key in (ROOTFS_MOUNTS_ANNOTATION, SECCOMP_ANNOTATION, INIT_ANNOTATION):
        annotations.pop(key, None)
    out["annotations"] = annotations
    return out


def _profile_caps(capset):
    from skiff.linux import caps as _caps
    if capset is None:
        return tuple(_caps.NAMES)
    return tuple(sorted(set(capset.get("bounding") or ())))


def rootfs_mounts(config: dict) -> list[dict]:
    text = (config.get("annotations") or {}).get(ROOTFS_MOUNTS_ANNOTATION)
    if not text:
        return []
    try:
        return json.loads(text)
    except ValueError:
        raise RuntimeFailure(f"annotation {ROOTFS_MOUNTS_ANNOTATION}: invalid JSON") from None


def mapped_root(config: dict) -> tuple[int, int] | None:
    """The host (uid, gid) of the container's root when it has a user namespace with maps."""
    linux = config.get("linux") or {}
    if not any(n.get("type") == "user" and not n.get("path")
               for n in linux.get("namespaces") or ()):
        return None

    def host_of_zero(maps):
        for m in maps or ():
            if m["containerID"] <= 0 < m["containerID"] + m["size"]:
                return m["hostID"] - m["containerID"]
        return None

    uid, gid = host_of_zero(linux.get("uidMappings")), host_of_zero(linux.get("gidMappings"))
    return None if uid is None or gid is None else (uid, gid)


def idmapped_options(options: list[str], config: dict, lowers_dir: str) -> list[str]:
    """An overlay's options with each lower dir replaced by an idmapped mount of it under
    `lowers_dir` (the container's maps), and its upper and work dirs given to its root."""
    from skiff.linux import idmap

    linux = config["linux"]
    uid, gid = mapped_root(config)
    out = []
    ns = idmap.userns_fd(linux["uidMappings"], linux["gidMappings"])
    try:
        for opt in options:
            key, _, value = opt.partition("=")
            if key == "lowerdir":
                mapped = []
                for i, lower in enumerate(value.split(":")):
                    target = os.path.join(lowers_dir, str(i))
                    os.makedirs(target, exist_ok=True)
                    idmap.idmapped_bind(lower, target, ns)
                    mapped.append(target)
                opt = "lowerdir=" + ":".join(mapped)
            elif key in ("upperdir", "workdir"):
                st = os.stat(value)
                if (st.st_uid, st.st_gid) == (0, 0):   # new: its root's from now on
                    os.chown(value, uid, gid)
            out.append(opt)
    finally:
        os.close(ns)
    return out


def mount_rootfs(config: dict, rootfs_dir: str, lowers_dir: str | None = None) -> bool:
    """Mount the image's layers (the overlay skiff-runtime would mount inside the container)
    at `rootfs_dir`; False when config.json names none (rootfs_dir is the rootfs itself).
    With a user namespace, the layers are seen through idmapped mounts under `lowers_dir`."""
    from skiff.linux import mount as _mount

    mounts = [m for m in rootfs_mounts(config)
              if (m.get("destination") or m.get("target") or "/") == "/"]
    if not mounts:
        return False
    os.makedirs(rootfs_dir, exist_ok=True)
    unmount_rootfs(rootfs_dir, lowers_dir)   # what a crashed monitor left behind
    m = mounts[0]
    raw = list(m.get("options") or [])
    if mapped_root(config) is not None and m.get("type") == "overlay":
        if lowers_dir is None:
            raise RuntimeFailure("a user namespace needs a directory for idmapped layers")
        try:
            raw = idmapped_options(raw, config, lowers_dir)
        except OSError as e:
            unmount_rootfs(rootfs_dir, lowers_dir)
            raise RuntimeFailure(f"idmapped mounts of the image's layers: {e.strerror}") \
                from None
    options = _mount.parse_options(raw)
    try:
        if m.get("type") in ("bind", "rbind") or options.flags & _mount.MS_BIND:
            _mount.mount(m.get("source"), rootfs_dir, "", _mount.MS_BIND | _mount.MS_REC)
        else:
            _mount.mount(m.get("source") or m.get("type"), rootfs_dir, m.get("type"),
                         options.flags, options.data)
    except OSError as e:
        unmount_rootfs(rootfs_dir, lowers_dir)
        raise RuntimeFailure(f"mounting the container's root filesystem: "
                             f"{os.strerror(e.errno)}") from None
    return True


def _mount_points() -> set[str]:
    """Every mount point (os.path.ismount misses a bind mount from the same filesystem)."""
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4].replace("\\040", " ") for line in f}


def unmount_rootfs(rootfs_dir: str, lowers_dir: str | None = None) -> None:
    from skiff.linux import mount as _mount

    targets = [rootfs_dir]
    if lowers_dir and os.path.isdir(lowers_dir):
        targets += [os.path.join(lowers_dir, n) for n in sorted(os.listdir(lowers_dir))]
    for target in targets:
        for _ in range(8):   # stacked mounts, one detach each
            if target not in _mount_points():
                break
            try:
                _mount.umount2(target, _mount.MNT_DETACH)
            except OSError:
                break
