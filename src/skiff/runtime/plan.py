"""config.json -> an ordered list of setup steps (plain data). Pure: no I/O, no clock.

    plan = build(config, bundle="/b", container_id="c1", host=host.current())
    plan.clone_flags      # namespaces the first process is cloned into
    plan.cgroups          # [(Hierarchy, dir)] to create and join
    plan.cgroup_writes    # [(controller, file, value)] limits to write before the fork
    plan.steps            # [Step] performed in the container's first process, in order
    plan.seccomp          # None, ("default", capability names) or ("profile", linux.seccomp)

The order is what the kernel needs: cgroups before the cgroup namespace; every mount before
pivot_root; hostname, sysctls and the terminal while /proc/sys and /dev are still writable;
masked and read-only paths after them; then rlimits, the bounding set, user and groups,
capabilities, cwd, the command lookup, and seccomp last. Loading a filter without
no_new_privs needs CAP_SYS_ADMIN, so when the container does not keep it, it stays in the
effective set until the filter is loaded and is dropped by one final capset (which any sane
filter allows), as the only call between seccomp and execve.

Annotation `org.skiff.rootfs.mounts` (a JSON list of {"destination", "type", "source",
"options"}) names mounts made onto root.path first, inside the container's mount namespace,
so that an overlay rootfs disappears with the container. `org.skiff.seccomp` = "unconfined"
turns the default filter off (docker's `--security-opt seccomp=unconfined`).
`org.skiff.init` = "true" (docker's `--init`) keeps the container's first process as PID 1,
a reaper that forwards signals, and execs the command in a child (step ForkInit): no init
binary is needed in the image or on the host. Other runtimes ignore the annotation.
"""

import json
import os
import posixpath

from skiff.errors import InvalidArgument
from skiff.linux import caps as _caps
from skiff.linux import mount as _m
from skiff.linux import ns as _ns

from . import cgroups as _cg
from . import steps as S

ROOTFS_MOUNTS_ANNOTATION = "org.skiff.rootfs.mounts"
SECCOMP_ANNOTATION = "org.skiff.seccomp"
INIT_ANNOTATION = "org.skiff.init"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Created in /dev whatever config.json says (the runtime spec's default devices).
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

_RUNTIME_CAPS = 1 << _caps.CAP_SYS_ADMIN


class Plan:
    __slots__ = ("rootfs", "clone_flags", "pid_ns_path", "cgroups", "cgroup_writes", "steps",
                 "seccomp", "terminal", "warnings", "id_maps", "parent_joins")

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))

    def __repr__(self):
        return f"Plan(clone_flags={self.clone_flags:#x}, steps={len(self.steps)})"


def _clean(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/")) if path else "/"


def _abs(bundle: str, path: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(bundle, path))


def build(config: dict, *, bundle: str, container_id: str, host, console: bool = False,
          wait_start: bool = False) -> Plan:
    if not isinstance(config, dict):
        raise InvalidArgument("config.json: not a JSON object")
    process = config.get("process") or {}
    linux = config.get("linux") or {}
    root = config.get("root") or {}
    annotations = config.get("annotations") or {}
    args = process.get("args") or []
    if not args:
        raise InvalidArgument("process.args must not be empty")
    rootfs = _abs(bundle, root.get("path") or "rootfs")
    warnings = []

    # -- namespaces
    clone_flags = 0
    pid_ns_path = None
    joins = []
    new_cgroup_ns = False
    for entry in linux.get("namespaces") or ():
        kind = entry.get("type")
        flag = _ns.NAMESPACES.get(kind)
        if flag is None:
            raise InvalidArgument(f"unknown namespace type {kind!r}")
        if kind == "time":
            raise InvalidArgument(f"{kind} namespaces are not supported yet")
        path = entry.get("path")
        if kind == "user":
            if path:
                raise InvalidArgument("joining a user namespace is not supported")
            clone_flags |= flag
            continue
        if path:
            if kind == "mount":
                raise InvalidArgument("joining a mount namespace is not supported")
            if kind == "pid":
                pid_ns_path = path
            else:
                joins.append(S.JoinNamespace(kind, path))
        elif kind == "cgroup":
            new_cgroup_ns = True
        else:
            clone_flags |= flag
    if not clone_flags & _ns.CLONE_NEWNS:
        raise InvalidArgument("a new mount namespace is required")
    new_uts = bool(clone_flags & _ns.CLONE_NEWUTS)
    new_net = bool(clone_flags & _ns.CLONE_NEWNET)

    # -- cgroups
    cg_dirs = _cg.paths(linux.get("cgroupsPath"), container_id, host)
    cg_writes = _cg.resource_writes(linux.get("resources"), host.cgroup_v2)

    steps = []
    if cg_dirs:
        steps.append(S.JoinCgroups(_cg.join_files(cg_dirs, host.cgroup_v2)))
    steps.extend(joins)
    if new_cgroup_ns:
        steps.append(S.Unshare(_ns.CLONE_NEWCGROUP))

    # -- root filesystem and mounts
    prop = linux.get("rootfsPropagation") or "rslave"
    if prop not in _m.PROPAGATION:
        raise InvalidArgument(f"invalid rootfsPropagation {prop!r}")
    steps.append(S.SetPropagation("/", _m.PROPAGATION[prop]))
    rootfs_mounts = _rootfs_mounts(annotations.get(ROOTFS_MOUNTS_ANNOTATION), bundle)
    if not any(m.target == "/" for m in rootfs_mounts):
        steps.append(S.Mount(rootfs, "/", "", _m.MS_BIND | _m.MS_REC, create=""))
    steps.extend(rootfs_mounts)

    dev_is_bind = False
    for m in config.get("mounts") or ():
        dest = _clean(m.get("destination") or "")
        mtype = m.get("type") or ""
        opts = _m.parse_options(m.get("options"))
        is_bind = mtype in ("bind", "rbind") or bool(opts.flags & _m.MS_BIND)
        if dest == "/dev" and is_bind:
            dev_is_bind = True
        if mtype in ("cgroup", "cgroup2") and not is_bind:
            steps.extend(_cgroup_mount(dest, opts, host, cg_dirs, new_cgroup_ns))
        elif is_bind:
            src = _abs(bundle, m.get("source") or "")
            flags = _m.MS_BIND | (opts.flags & _m.MS_REC)
            rest = opts.flags & ~(_m.MS_BIND | _m.MS_REC | _m.MS_REMOUNT)
            steps.append(S.Mount(src, dest, "", flags, "",
                                 (rest | _m.MS_BIND | _m.MS_REMOUNT) if rest else 0,
                                 tuple(opts.propagation), "auto"))
        else:
            steps.append(S.Mount(m.get("source") or mtype, dest, mtype, opts.flags, opts.data,
                                 0, tuple(opts.propagation), "dir"))
    if not dev_is_bind:
        devices = {p: ("c", ma, mi, 0o666, 0, 0) for p, ma, mi in DEFAULT_DEVICES}
        for d in linux.get("devices") or ():
            devices[_clean(d["path"])] = (d.get("type", "c"), d.get("major", 0),
                                          d.get("minor", 0), d.get("fileMode", 0o666),
                                          d.get("uid", 0), d.get("gid", 0))
        for path, (kind, ma, mi, mode, uid, gid) in devices.items():
            steps.append(S.MakeDevice(path, kind, ma, mi, mode, uid, gid))
        for target, path in DEV_SYMLINKS:
            steps.append(S.Symlink(target, path))
        if getattr(host, "kcore", False):
            steps.append(S.Symlink("/proc/kcore", "/dev/core"))
        steps.append(S.Symlink("pts/ptmx", "/dev/ptmx", True))
    steps.append(S.PivotRoot(rootfs))

    # -- the rest of the process's world
    if config.get("hostname"):
        if not new_uts:
            raise InvalidArgument("unable to set hostname without a private UTS namespace")
        steps.append(S.SetHostname(config["hostname"]))
    if config.get("domainname"):
        if not new_uts:
            raise InvalidArgument("unable to set domainname without a private UTS namespace")
        steps.append(S.SetDomainname(config["domainname"]))
    if new_net:
        steps.append(S.LinkUp("lo"))
    for key, value in (linux.get("sysctl") or {}).items():
        steps.append(S.Sysctl(key, str(value)))

    user = process.get("user") or {}
    uid = int(user.get("uid", 0))
    gid = int(user.get("gid", 0))
    terminal = bool(process.get("terminal"))
    if terminal:
        if not console:
            raise InvalidArgument("process.terminal is set but no console socket was given")
        size = process.get("consoleSize") or {}
        steps.append(S.Terminal(uid, gid, int(size.get("height") or 0),
                                int(size.get("width") or 0)))
    for path in linux.get("maskedPaths") or ():
        steps.append(S.MaskPath(_clean(path)))
    for path in linux.get("readonlyPaths") or ():
        steps.append(S.ReadonlyPath(_clean(path)))
    if root.get("readonly"):
        steps.append(S.RemountRootReadonly())

    for rl in process.get("rlimits") or ():
        name = rl.get("type", "")
        if name not in RLIMITS:
            raise InvalidArgument(f"unknown rlimit type {name!r}")
        steps.append(S.SetRlimit(name, RLIMITS[name], int(rl.get("soft", 0)),
                                 int(rl.get("hard", 0))))
    if process.get("oomScoreAdj") is not None:
        steps.append(S.OomScoreAdj(int(process["oomScoreAdj"])))

    # -- privileges
    capset = process.get("capabilities")
    nnp = bool(process.get("noNewPrivileges"))
    seccomp = _seccomp_source(linux.get("seccomp"), annotations.get(SECCOMP_ANNOTATION), capset)
    final_caps = None
    if capset is not None:
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            bad = _caps.unknown(capset.get(kind))
            if bad:
                warnings.append(f"unknown capabilities ignored: {', '.join(bad)}")
        bounding = _caps.mask(capset.get("bounding"))
        effective = _caps.mask(capset.get("effective"))
        permitted = _caps.mask(capset.get("permitted"))
        inheritable = _caps.mask(capset.get("inheritable"))
        ambient = _caps.mask(capset.get("ambient"))
        steps.append(S.DropBounding(bounding))
    steps.append(S.SetUser(uid, gid, tuple(int(g) for g in user.get("additionalGids") or ())))
    if capset is not None:
        extra = 0
        if seccomp is not None and not nnp:
            extra = _RUNTIME_CAPS & ~(effective & permitted)
        steps.append(S.SetCapabilities(effective | extra, permitted | extra, inheritable))
        if extra:
            final_caps = S.SetCapabilities(effective, permitted, inheritable)
        steps.append(S.SetAmbient(ambient))
    umask = user.get("umask")
    steps.append(S.Umask(0o022 if umask is None else int(umask)))
    steps.append(S.Chdir(process.get("cwd") or "/"))
    env = list(process.get("env") or ())
    path_env = DEFAULT_PATH
    for item in env:
        if item.startswith("PATH="):
            path_env = item[5:]
    steps.append(S.ResolveCommand(args[0], path_env))
    if wait_start:
        steps.append(S.WaitStart())
    if nnp:
        steps.append(S.NoNewPrivs())
    if seccomp is not None:
        flags = 0
        if seccomp[0] == "profile":
            from skiff.linux.seccomp import flags_of
            try:
                flags = flags_of(seccomp[1].get("flags"))
            except ValueError as e:
                raise InvalidArgument(str(e)) from None
        steps.append(S.LoadSeccomp(seccomp[0], flags))
    if final_caps is not None:
        steps.append(final_caps)
    if annotations.get(INIT_ANNOTATION) == "true":
        steps.append(S.ForkInit())
    steps.append(S.Exec(tuple(args), tuple(env)))

    id_maps, parent_joins = None, []
    if clone_flags & _ns.CLONE_NEWUSER:
        id_maps, parent_joins, steps = _user_namespace(linux, steps, pid_ns_path)
    return Plan(rootfs=rootfs, clone_flags=clone_flags, pid_ns_path=pid_ns_path,
                cgroups=cg_dirs, cgroup_writes=cg_writes, steps=steps, seccomp=seccomp,
                terminal=terminal, warnings=warnings, id_maps=id_maps,
                parent_joins=parent_joins)


# namespaces a new user namespace's init can only join before it is in that user namespace
_PARENT_JOINED = ("network", "ipc", "uts")


def _user_namespace(linux: dict, steps: list, pid_ns_path) -> tuple:
    """A new user namespace: (the id maps, the namespaces the runtime enters around the
    clone, the steps). Namespaces joined by path belong to the host's user namespace, which
    the init has no privileges in once cloned: the runtime enters them itself for the clone
    (the child starts in them). Device nodes cannot be made in a user namespace: the host's
    are bound instead. BecomeRoot follows the cgroup join, which still writes as host root."""
    uid_maps, gid_maps = linux.get("uidMappings") or [], linux.get("gidMappings") or []
    if not uid_maps or not gid_maps:
        raise InvalidArgument("a user namespace needs linux.uidMappings and gidMappings")
    for m in uid_maps + gid_maps:
        if not all(isinstance(m.get(k), int) and m[k] >= 0 for k in
                   ("containerID", "hostID", "size")):
            raise InvalidArgument(f"invalid id mapping {m!r}")
    if pid_ns_path:
        raise InvalidArgument("a new user namespace with a joined pid namespace is not "
                              "supported")
    parent_joins, out = [], []
    for step in steps:
        if isinstance(step, S.JoinNamespace):
            if step.kind not in _PARENT_JOINED:
                raise InvalidArgument(f"joining a {step.kind} namespace from a new user "
                                      "namespace is not supported")
            parent_joins.append((step.kind, step.path))
            continue
        if isinstance(step, S.MakeDevice):
            if not os.path.exists(step.path):
                raise InvalidArgument(f"device {step.path}: in a user namespace devices are "
                                      "bound from the host, which has none at that path")
            out.append(S.Mount(step.path, step.path, "", _m.MS_BIND, create="file"))
            continue
        out.append(step)
    at = next((i + 1 for i, st in enumerate(out) if isinstance(st, S.JoinCgroups)), 0)
    sources = tuple(dict.fromkeys(st.source for st in out if isinstance(st, S.Mount)
                                  and st.flags & _m.MS_BIND and st.source.startswith("/")))
    out[at:at] = [S.OpenBindSources(sources), S.BecomeRoot()]
    return (uid_maps, gid_maps), parent_joins, out


def _seccomp_source(profile, annotation, capset):
    """("profile", linux.seccomp), None (unconfined), or ("default", capabilities): the
    default filter lets through what the bounding set's capabilities govern (all of them
    when config.json leaves capabilities alone)."""
    if profile:
        return ("profile", profile)
    if annotation == "unconfined":
        return None
    if capset is None:
        return ("default", tuple(_caps.NAMES))
    return ("default", tuple(sorted(set(capset.get("bounding") or ()))))


def _rootfs_mounts(text, bundle) -> list:
    if not text:
        return []
    try:
        docs = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        raise InvalidArgument(f"annotation {ROOTFS_MOUNTS_ANNOTATION}: invalid JSON") from None
    if not isinstance(docs, list):
        raise InvalidArgument(f"annotation {ROOTFS_MOUNTS_ANNOTATION}: not a list")
    out = []
    for d in docs:
        if not isinstance(d, dict):
            raise InvalidArgument(f"annotation {ROOTFS_MOUNTS_ANNOTATION}: not a mount")
        dest = _clean(d.get("destination") or d.get("target") or "/")
        mtype = d.get("type") or ""
        opts = _m.parse_options(d.get("options"))
        if mtype in ("bind", "rbind") or opts.flags & _m.MS_BIND:
            src = _abs(bundle, d.get("source") or "")
            rest = opts.flags & ~(_m.MS_BIND | _m.MS_REC | _m.MS_REMOUNT)
            out.append(S.Mount(src, dest, "", _m.MS_BIND | (opts.flags & _m.MS_REC), "",
                               (rest | _m.MS_BIND | _m.MS_REMOUNT) if rest else 0,
                               tuple(opts.propagation), "" if dest == "/" else "auto"))
        else:
            out.append(S.Mount(d.get("source") or mtype, dest, mtype, opts.flags, opts.data,
                               0, tuple(opts.propagation), "" if dest == "/" else "dir"))
    return out


def _cgroup_mount(dest, opts, host, cg_dirs, new_cgroup_ns) -> list:
    """/sys/fs/cgroup: cgroup2 on v2; on v1 a tmpfs with one mount per hierarchy. Inside a
    cgroup namespace the hierarchies are mounted (rooted at the container's cgroup);
    without one, the container's own cgroup dirs are bind-mounted."""
    flags = opts.flags & ~(_m.MS_BIND | _m.MS_REC)
    if host.cgroup_v2:
        if new_cgroup_ns:
            return [S.Mount("cgroup", dest, "cgroup2", flags, "", 0, tuple(opts.propagation))]
        src = cg_dirs[0][1] if cg_dirs else "/sys/fs/cgroup"
        return [S.Mount(src, dest, "", _m.MS_BIND | _m.MS_REC, "",
                        flags | _m.MS_BIND | _m.MS_REMOUNT, (), "dir")]
    out = [S.Mount("tmpfs", dest, "tmpfs", flags & ~_m.MS_RDONLY, "mode=755", 0, (), "dir")]
    dirs = dict((id(h), d) for h, d in cg_dirs)
    for h in host.hierarchies:
        target = posixpath.join(dest, h.name)
        if new_cgroup_ns:
            named = [c[5:] for c in h.controllers if c.startswith("name=")]
            out.append(S.Mount(named[0] if named else "cgroup", target, "cgroup", flags,
                               ",".join(h.controllers)))
        else:
            out.append(S.Mount(dirs.get(id(h), h.mountpoint), target, "", _m.MS_BIND, "",
                               flags | _m.MS_BIND | _m.MS_REMOUNT, (), "dir"))
        if "," in h.name:
            for c in h.controllers:
                if c != h.name and not c.startswith("name="):
                    out.append(S.Symlink(h.name, posixpath.join(dest, c)))
    if flags & _m.MS_RDONLY:
        out.append(S.Mount("tmpfs", dest, "", _m.MS_REMOUNT | flags, "mode=755", 0, (), ""))
    return out
