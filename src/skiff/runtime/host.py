"""What the runtime needs to know about the host, read once per process and cached.

`Host.cgroup_v2` is True on a pure cgroup v2 host (/sys/fs/cgroup is cgroup2). `hierarchies`
lists the cgroup hierarchies containers join: every v1 hierarchy on a v1 or hybrid host (the
hybrid host's empty v2 tree is left alone), or the single v2 tree. Each `Hierarchy` knows
where it is mounted, its controllers (`("memory",)`, `("cpu", "cpuacct")`,
`("name=systemd",)`, or `()` for v2) and this process's own cgroup in it.

`parse(mountinfo_text, proc_cgroup_text)` is pure; `current()` reads /proc once and caches.
"""


import os


class Hierarchy:
    __slots__ = ("mountpoint", "mount_root", "controllers", "own_path")

    def __init__(self, mountpoint, mount_root, controllers, own_path):
        self.mountpoint = mountpoint
        self.mount_root = mount_root
        self.controllers = tuple(controllers)
        self.own_path = own_path

    def __eq__(self, other):
        return isinstance(other, Hierarchy) and (
            self.mountpoint, self.mount_root, self.controllers, self.own_path) == (
            other.mountpoint, other.mount_root, other.controllers, other.own_path)

    def __repr__(self):
        return (f"Hierarchy({self.mountpoint!r}, {self.mount_root!r}, {self.controllers!r}, "
                f"{self.own_path!r})")

    @property
    def name(self) -> str:
        """Directory name under /sys/fs/cgroup inside a container ("memory", "systemd")."""
        return self.mountpoint.rstrip("/").rsplit("/", 1)[-1] if self.controllers else ""

    def dir_for(self, cgroup_path: str) -> str:
        """Host directory of cgroup `cgroup_path` (absolute in the hierarchy)."""
        root = self.mount_root.rstrip("/")
        if root and (cgroup_path == root or cgroup_path.startswith(root + "/")):
            cgroup_path = cgroup_path[len(root):]
        return self.mountpoint.rstrip("/") + "/" + cgroup_path.strip("/") if \
            cgroup_path.strip("/") else self.mountpoint


class Host:
    """`kcore`: the host has /proc/kcore (runc then links /dev/core to it; so do we)."""
    __slots__ = ("cgroup_v2", "hierarchies", "kcore")

    def __init__(self, cgroup_v2: bool, hierarchies: list, kcore: bool = False):
        self.cgroup_v2 = cgroup_v2
        self.hierarchies = hierarchies
        self.kcore = kcore

    def hierarchy(self, controller: str):
        for h in self.hierarchies:
            if controller in h.controllers or (self.cgroup_v2 and not h.controllers):
                return h
        return None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list:
    """[(mount_root, mountpoint, fstype, source, super_options)] in mount order."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf = left.split()
        rf = right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        out.append((_unescape(lf[3]), _unescape(lf[4]), rf[0], rf[1], rf[2]))
    return out


def parse(mountinfo_text: str, proc_cgroup_text: str) -> Host:
    mounts = parse_mountinfo(mountinfo_text)
    own = {}  # controller key (frozenset of names, or "" for v2) -> path
    for line in proc_cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        own[frozenset(ctrls.split(",")) if ctrls else ""] = path
    v2 = any(mp == "/sys/fs/cgroup" and fs == "cgroup2" for _r, mp, fs, _s, _o in mounts)
    hierarchies = []
    seen = set()
    for root, mp, fstype, _src, opts in mounts:
        if v2:
            if fstype == "cgroup2" and mp == "/sys/fs/cgroup" and "" in own:
                hierarchies = [Hierarchy(mp, root, (), own[""])]
            continue
        if fstype != "cgroup":
            continue
        names = [o for o in opts.split(",") if o not in _NOT_CONTROLLERS]
        key = frozenset(names)
        if key in seen or key not in own:
            continue
        seen.add(key)
        hierarchies.append(Hierarchy(mp, root, names, own[key]))
    return Host(v2, hierarchies)


# super options of a v1 cgroup mount that are not controller names
_NOT_CONTROLLERS = frozenset({"rw", "ro", "xattr", "noprefix", "clone_children",
                              "cpuset_v2_mode", "none", "nofavordynmods", "favordynmods"})

_current = None


def current() -> Host:
    global _current
    if _current is None:
        with open("/proc/self/mountinfo") as f:
            mi = f.read()
        with open("/proc/self/cgroup") as f:
            cg = f.read()
        _current = parse(mi, cg)
        _current.kcore = os.path.exists("/proc/kcore")
    return _current


def forget() -> None:
    """Drop the cache (after this process moved to another cgroup)."""
    global _current
    _current = None
