"""The vocabulary of a container's setup: one small value per kernel operation.

`plan.build` turns config.json into a list of these; `apply.run` performs them, in order, in
the container's first process. Each step is plain data (compared by value in tests) and says
in `describe()` what it does, which is also how an error names the step that failed.

Paths marked "in root" are container paths resolved under the rootfs (without following
symlinks out of it) because they run before pivot_root; the others run after it.
"""


class Step:
    __slots__ = ()

    def __init__(self, *args, **kwargs):
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{type(self).__name__}: bad field {key!r}")
            values[key] = value
        defaults = getattr(self, "DEFAULTS", {})
        for name in names:
            if name in values:
                object.__setattr__(self, name, values[name])
            elif name in defaults:
                object.__setattr__(self, name, defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")

    def fields(self) -> tuple:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other):
        return type(self) is type(other) and self.fields() == other.fields()

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(
            tuple(v) if isinstance(v, list) else v for v in self.fields()))

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def describe(self) -> str:
        return type(self).__name__


# --- before the mounts: cgroups and namespaces -------------------------------------------

class JoinCgroups(Step):
    """Write "0" (this process) into each file (`tasks` on v1, `cgroup.procs` on v2)."""
    __slots__ = ("files",)

    def describe(self):
        return "join cgroup"


class JoinNamespace(Step):
    """setns() into the namespace file `path` (a runtime-spec namespace with a path)."""
    __slots__ = ("kind", "path")

    def describe(self):
        return f"join {self.kind} namespace {self.path}"


class Unshare(Step):
    __slots__ = ("flags",)

    def describe(self):
        return "unshare namespaces"


# --- the filesystem -----------------------------------------------------------------------

class SetPropagation(Step):
    """Change the propagation of `target` (e.g. "/" to rslave) so nothing leaks to the host."""
    __slots__ = ("target", "flags")

    def describe(self):
        return f"set propagation of {self.target}"


class Mount(Step):
    """One mount(2), plus a bind remount for flags a bind ignores, plus propagation calls.

    `create` says what to make at the target first: "dir", "file", "auto" (file or
    directory, like the bind source) or "" (nothing). `in_root`: target is under the rootfs.
    """
    __slots__ = ("source", "target", "fstype", "flags", "data", "remount_flags",
                 "propagation", "create", "in_root")
    DEFAULTS = {"data": "", "remount_flags": 0, "propagation": (), "create": "dir",
                "in_root": True}

    def describe(self):
        where = "rootfs at " if self.in_root else ""
        return f'error mounting "{self.source}" to {where}"{self.target}"'


class BecomeRoot(Step):
    """In a new user namespace: wait until the runtime has written the id maps, then take
    the namespace's root (uid and gid 0 inside, the mapped ids outside)."""
    __slots__ = ()

    def describe(self):
        return "become root of the user namespace"


class OpenBindSources(Step):
    """Before BecomeRoot: open the host paths bind mounts come from (as host root, who may
    walk through directories the namespace's root may not); the mounts use the descriptors."""
    __slots__ = ("paths",)

    def describe(self):
        return "open the sources of bind mounts"


class MakeDevice(Step):
    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def describe(self):
        return f"create device {self.path}"


class Symlink(Step):
    """Symlink in root; `replace` removes what is there first (for /dev/ptmx)."""
    __slots__ = ("target", "path", "replace")
    DEFAULTS = {"replace": False}

    def describe(self):
        return f"symlink {self.path} -> {self.target}"


class PivotRoot(Step):
    __slots__ = ("root",)

    def describe(self):
        return f"pivot_root {self.root}"


class MaskPath(Step):
    __slots__ = ("path",)

    def describe(self):
        return f"mask {self.path}"


class ReadonlyPath(Step):
    __slots__ = ("path",)

    def describe(self):
        return f"make {self.path} read-only"


class RemountRootReadonly(Step):
    __slots__ = ()

    def describe(self):
        return "remount / read-only"


# --- the rest of the process's world --------------------------------------------------------

class SetHostname(Step):
    __slots__ = ("name",)

    def describe(self):
        return f"sethostname {self.name}"


class SetDomainname(Step):
    __slots__ = ("name",)

    def describe(self):
        return f"setdomainname {self.name}"


class LinkUp(Step):
    __slots__ = ("name",)

    def describe(self):
        return f"bring {self.name} up"


class Sysctl(Step):
    __slots__ = ("key", "value")

    def describe(self):
        return f"sysctl {self.key}={self.value}"


class Terminal(Step):
    """Open a pty in the container's devpts, send the master over the console socket, make
    the peer the controlling terminal and stdio, bind it over /dev/console; `height` and
    `width` (process.consoleSize) set its size when not 0."""
    __slots__ = ("uid", "gid", "height", "width")
    DEFAULTS = {"height": 0, "width": 0}

    def describe(self):
        return "set up the terminal"


class SetRlimit(Step):
    __slots__ = ("name", "resource", "soft", "hard")

    def describe(self):
        return f"setrlimit {self.name}"


class OomScoreAdj(Step):
    __slots__ = ("value",)

    def describe(self):
        return "set oom_score_adj"


class Umask(Step):
    __slots__ = ("mask",)

    def describe(self):
        return "umask"


# --- privileges -----------------------------------------------------------------------------

class DropBounding(Step):
    """Keep only `keep` (a capability bit mask) in the bounding set."""
    __slots__ = ("keep",)

    def describe(self):
        return "drop capabilities from the bounding set"


class SetUser(Step):
    """setgroups, setresgid, setresuid, keeping permitted capabilities across the uid change."""
    __slots__ = ("uid", "gid", "groups")

    def describe(self):
        return f"set user {self.uid}:{self.gid}"


class SetCapabilities(Step):
    __slots__ = ("effective", "permitted", "inheritable")

    def describe(self):
        return "set capabilities"


class SetAmbient(Step):
    __slots__ = ("caps",)

    def describe(self):
        return "set ambient capabilities"


class NoNewPrivs(Step):
    __slots__ = ()

    def describe(self):
        return "set no_new_privs"


class Chdir(Step):
    __slots__ = ("path",)

    def describe(self):
        return f"chdir to cwd ({self.path!r})"


class ResolveCommand(Step):
    """Find args[0] in the container's PATH, as Go's exec.LookPath does (runc's wording)."""
    __slots__ = ("command", "path_env")

    def describe(self):
        return f"resolve {self.command}"


class WaitStart(Step):
    """Block until `start` opens the exec fifo (the `create` / `start` split)."""
    __slots__ = ()

    def describe(self):
        return "wait for start"


class LoadSeccomp(Step):
    """Install the filter compiled beforehand under `key`."""
    __slots__ = ("key", "flags")
    DEFAULTS = {"flags": 0}

    def describe(self):
        return "load seccomp filter"


class ForkInit(Step):
    """`--init`: fork; the child goes on to exec the command (in its own process group, the
    terminal's foreground one), and this process stays PID 1: it reaps every process
    re-parented to it, forwards the signals it gets to the child, and exits with the child's
    status (128 + N when signal N killed it), as tini does. Confined like the command: it
    comes after the capabilities and the seccomp filter."""
    __slots__ = ()

    def describe(self):
        return "start the init"


class Exec(Step):
    __slots__ = ("args", "env")

    def describe(self):
        return "exec"
