"""A plain cgroup v1 view of a hybrid host, for the OCI runtimes skiff drives (runc, crun).

A hybrid host mounts the v1 controllers under a tmpfs at /sys/fs/cgroup and a cgroup2 tree
at /sys/fs/cgroup/unified. skiff's containers use the v1 hierarchies only there (host.py).
crun 1.8 refuses such a host outright as soon as any controller sits on the v2 tree ("cgroups
in hybrid mode not supported, drop all controllers from cgroupv2"; the hugetlb controller does
on some hosts), and runc would put its containers in the v2 tree too. So each runtime process
runs in a mount namespace of its own in which the v2 tree is detached: there it sees a v1
host and makes skiff's choice.

    subprocess.run(argv, preexec_fn=v1_view_preexec())   # None on a v1 or pure v2 host

Only /sys/fs/cgroup is made a slave in that namespace (detaching a mount propagates to the
peers of its parent, and the host must keep its v2 tree); every other mount keeps the host's
propagation, so bind propagation (rshared volumes) works as without it.
"""

from __future__ import annotations

CGROUP_ROOT = "/sys/fs/cgroup"
UNIFIED = "/sys/fs/cgroup/unified"


def is_hybrid(mountinfo_text: str) -> bool:
    """Pure: v1 hierarchies under a tmpfs /sys/fs/cgroup with a cgroup2 tree beside them."""
    from skiff.runtime.host import parse_mountinfo
    types = {mountpoint: fstype for _root, mountpoint, fstype, _src, _opts
             in parse_mountinfo(mountinfo_text)}
    return types.get(CGROUP_ROOT) == "tmpfs" and types.get(UNIFIED) == "cgroup2"


_hybrid: bool | None = None


def host_is_hybrid() -> bool:
    global _hybrid
    if _hybrid is None:
        try:
            with open("/proc/self/mountinfo") as f:
                _hybrid = is_hybrid(f.read())
        except OSError:
            _hybrid = False
    return _hybrid


def enter_v1_view() -> None:
    """In the calling process: a new mount namespace without the v2 tree. For a child
    between fork and exec (async-signal-safe enough: three system calls, no allocation
    beyond ctypes' own)."""
    from skiff.linux import mount as _mount
    from skiff.linux import ns as _ns
    _ns.unshare(_ns.CLONE_NEWNS)
    _mount.mount(None, CGROUP_ROOT, None, _mount.MS_REC | _mount.MS_SLAVE)
    _mount.umount2(UNIFIED, _mount.MNT_DETACH)


def v1_view_preexec():
    """`enter_v1_view` on a hybrid host (to pass as subprocess's preexec_fn), else None."""
    if not host_is_hybrid():
        return None
    # resolve the libc bindings now, in the parent, not in the forked child
    from skiff.linux import mount as _mount  # noqa: F401
    from skiff.linux import ns as _ns  # noqa: F401
    return enter_v1_view


def in_v1_view(argv: list[str]) -> list[str]:
    """`argv` run in that view by util-linux's unshare(1), for callers that must not fork
    Python (tests, shells); unchanged on a v1 or pure v2 host."""
    if not host_is_hybrid():
        return list(argv)
    script = f"mount --make-rslave {CGROUP_ROOT} && umount -l {UNIFIED} && exec \"$@\""
    return ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script, "sh",
            *argv]

