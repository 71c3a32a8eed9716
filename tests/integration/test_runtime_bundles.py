"""Busybox bundles for the runtime tests (helpers only: no tests here)."""

import json
import os
import shutil
import subprocess
import uuid

BUSYBOX = "/bin/busybox"


def scratch_dir() -> str:
    """Where bundles go: /var/tmp, or the first candidate that is not itself on an overlay
    (an overlay's upper dir cannot live on one, as in scripts/cgroup2-vm.sh's guest)."""
    with open("/proc/self/mountinfo") as f:
        mounts = [(line.split()[4], line.split(" - ")[1].split()[0]) for line in f]
    for candidate in ("/var/tmp", "/tmp", "/run", "/var/lib/skiff"):
        if not os.path.isdir(candidate):
            continue
        best = max((mp for mp, _fs in mounts if candidate == mp or
                    candidate.startswith(mp.rstrip("/") + "/")), key=len)
        if dict(mounts)[best] != "overlay":
            return candidate
    return "/var/tmp"


def make_rootfs(path: str) -> str:
    """bin/busybox with every applet symlinked, etc/passwd and etc/group, tmp, root."""
    os.makedirs(os.path.join(path, "bin"))
    for d in ("etc", "tmp", "root", "proc", "sys", "dev"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for name in applets:
        link = os.path.join(path, "bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return path


def new_id(prefix="rt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_config(args, cgroups_path, *, hostname="box", terminal=False, env=None,
                rootfs_mounts=None, root_path="rootfs"):
    from skiff.oci.spec import default_spec
    spec = default_spec(list(args), env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                             "/usr/bin:/sbin:/bin"],
                        hostname=hostname, terminal=terminal,
                        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}])
    spec["root"]["path"] = root_path
    spec["linux"]["cgroupsPath"] = cgroups_path
    if rootfs_mounts is not None:
        spec["annotations"] = {"org.skiff.rootfs.mounts": json.dumps(rootfs_mounts)}
    return spec


def write_bundle(bundle: str, spec: dict) -> str:
    os.makedirs(bundle, exist_ok=True)
    os.makedirs(os.path.join(bundle, spec["root"]["path"]), exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return bundle


def overlay_bundle(bundle: str, lower: str, args, cgroups_path, **kw) -> str:
    """A bundle whose rootfs is an overlay of `lower` with its own upper and work dirs,
    mounted by the runtime inside the container (annotation org.skiff.rootfs.mounts)."""
    upper = os.path.join(bundle, "upper")
    work = os.path.join(bundle, "work")
    os.makedirs(upper)
    os.makedirs(work)
    mounts = [{"destination": "/", "type": "overlay", "source": "overlay",
               "options": [f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"]}]
    return write_bundle(bundle, make_config(args, cgroups_path, rootfs_mounts=mounts, **kw))


def mounts_under(path: str) -> list:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if path in line.split()[4]]


def remove_cgroup_parent(name: str) -> None:
    """rmdir `name` (and empty leaves in it) under our own cgroup in every cgroup mount,
    including a hybrid host's v2 tree, where runc makes its cgroups too."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    with open("/proc/self/mountinfo") as f:
        mounts = [(line.split()[4], line.split(" - ")[1].split()) for line in f]
    for mountpoint, (fstype, _src, opts) in mounts:
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            names = [o for o in opts.split(",") if o not in ("rw", "ro", "xattr")]
            key = next((k for k in own if k and set(k.split(",")) == set(names)), None)
            if key is None:
                continue
        else:
            continue
        base = os.path.join(mountpoint, own.get(key, "/").lstrip("/"), name)
        if not os.path.isdir(base):
            continue
        for leaf in os.listdir(base):
            if os.path.isdir(os.path.join(base, leaf)):
                try:
                    os.rmdir(os.path.join(base, leaf))
                except OSError:
                    pass
        try:
            os.rmdir(base)
        except OSError:
            pass


def cgroup_leftovers(parent_dirs) -> list:
    """Subdirectories left in our test parent cgroups."""
    out = []
    for d in parent_dirs:
        if os.path.isdir(d):
            out += [os.path.join(d, n) for n in os.listdir(d)
                    if os.path.isdir(os.path.join(d, n))]
    return out
