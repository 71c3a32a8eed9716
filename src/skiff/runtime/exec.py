"""exec_process(): a new process inside a running container, as `runc exec` makes one.

    pid = exec_process(bundle, "c1", init_pid, {"args": ["id"]}, stdio=(0, 1, 2))

The process joins the cgroups and every namespace of the container's init (read from
/proc/<init>/cgroup and /proc/<init>/ns/*), and then gets the container's privileges the
way its init got them: the same plan steps (bounding set, user, capabilities, umask, cwd,
the command lookup, no_new_privs, the container's seccomp filter last, execve), taken from
`plan.build` over config.json with `process` laid over config.json's own process.

Plan, then apply, as spawn: `build(...)` is pure and returns the launch plan; `launch`'s
own machinery runs it (failures reported over a pipe). The caller enters the container's
pid namespace for its children only (setns: pid_for_children), clones the process straight
into it, and returns to its own namespace at once: no intermediate process. The caller reaps the
process; its pid is returned once execve has succeeded. Failures raise RuntimeFailure with
docker's wording (`OCI runtime exec failed: exec failed: unable to start container
process: ...: unknown`) and exit code 126/127 for a command that cannot run.
"""

import json
import os

from skiff.errors import InvalidArgument, RuntimeFailure
from skiff.linux import caps as _caps
from skiff.linux import ns as _ns

from . import apply as _apply
from . import plan as _plan
from . import steps as S

# The steps of plan.build that shape the process itself (the rest build the container).
PROCESS_STEPS = (S.SetRlimit, S.OomScoreAdj, S.DropBounding, S.SetUser, S.SetCapabilities,
                 S.SetAmbient, S.Umask, S.Chdir, S.ResolveCommand, S.NoNewPrivs,
                 S.LoadSeccomp, S.Exec)
# Joined in this order; mount last, since joining it changes what /proc/<pid>/ns/* names.
# The user namespace after the network one, which may belong to the host's (made by the
# engine) and is entered only from outside the container's; before the mount namespace,
# whose /proc would no longer show the init's namespace files.
NAMESPACE_ORDER = ("ipc", "uts", "network", "user", "cgroup", "mount")
_NS_FILES = {"ipc": "ipc", "uts": "uts", "network": "net", "cgroup": "cgroup", "mount": "mnt",
             "pid": "pid", "user": "user"}
PREFIX = "OCI runtime exec failed: exec failed: unable to start container process: "


class ExecTerminal(S.Step):
    """A pty opened in the container's devpts (we are in its mount namespace), its master
    sent over the console socket; the peer becomes the controlling terminal and stdio.
    Unlike the init's Terminal step, /dev/console is left alone."""
    __slots__ = ("uid", "height", "width")
    DEFAULTS = {"height": 0, "width": 0}

    def describe(self):
        return "set up the terminal"


def _exec_terminal(step, ctx):
    from skiff.linux import tty as _tty
    if ctx.console_fd is None:
        raise _apply.StepError("no console socket to send the terminal to")
    master = _tty.open_master("/dev/pts/ptmx")
    try:
        slave = _tty.open_peer(master)
        if step.height or step.width:
            _tty.set_size(master, step.height, step.width)
        if step.uid:
            os.fchown(slave, step.uid, -1)
        _tty.send_fd(ctx.console_fd, master, f"/dev/pts/{_tty.pts_number(master)}".encode())
    finally:
        os.close(master)
    os.close(ctx.console_fd)
    ctx.console_fd = None
    os.setsid()
    _tty.set_controlling(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


_apply.HANDLERS.setdefault(ExecTerminal, _exec_terminal)


class ExecPlan:
    """What launch._start_init needs: steps, clone flags, the pid namespace to enter."""
    __slots__ = ("steps", "clone_flags", "pid_ns_path", "seccomp", "rootfs", "id_maps")

    def __init__(self, steps, pid_ns_path, seccomp, rootfs):
        self.steps = steps
        self.clone_flags = 0
        self.id_maps = None   # an exec joins the container's user namespace, makes none
        self.pid_ns_path = pid_ns_path
        self.seccomp = seccomp
        self.rootfs = rootfs


def merged_process(config: dict, process: dict) -> dict:
    """config.json's process with `process` laid over it (runc's exec: what the exec'd
    process does not say, it takes from the container)."""
    base = dict(config.get("process") or {})
    base.pop("terminal", None)
    base.pop("consoleSize", None)
    base.update({k: v for k, v in process.items() if v is not None})
    return base


def build(config: dict, process: dict, *, bundle: str, container_id: str, host,
          joins: list, cgroup_files: list, pid_ns_path, console: bool) -> ExecPlan:
    """Pure: the exec plan. `joins` [(kind, path)] are the namespaces to enter besides pid;
    `cgroup_files` the files to write "0" to."""
    proc = merged_process(config, process)
    exec_config = dict(config)
    exec_config["process"] = proc
    linux = dict(exec_config.get("linux") or {})
    # a container in a user namespace (made by runc or crun): we join it, not create one
    linux["namespaces"] = [n for n in linux.get("namespaces") or () if n.get("type") != "user"]
    exec_config["linux"] = linux
    # The container's seccomp filter, even when the process has more capabilities
    # (--privileged): the default filter follows the container's bounding set.
    container_caps = (config.get("process") or {}).get("capabilities")
    try:
        plan = _plan.build(exec_config, bundle=bundle, container_id=container_id, host=host,
                           console=console)
        seccomp = _plan._seccomp_source((config.get("linux") or {}).get("seccomp"),
                                        (config.get("annotations") or {}).get(
                                            _plan.SECCOMP_ANNOTATION), container_caps)
    except InvalidArgument as e:
        raise RuntimeFailure(e.message) from None
    steps = []
    if cgroup_files:
        steps.append(S.JoinCgroups(tuple(cgroup_files)))
    for kind, path in joins:
        steps.append(S.JoinNamespace(kind, path))
    if proc.get("terminal"):
        size = proc.get("consoleSize") or {}
        uid = int((proc.get("user") or {}).get("uid", 0))
        steps.append(ExecTerminal(uid, int(size.get("height") or 0),
                                  int(size.get("width") or 0)))
    steps.extend(s for s in plan.steps if isinstance(s, PROCESS_STEPS))
    if seccomp is not None and plan.seccomp is None:
        raise RuntimeFailure("the container's seccomp filter cannot be applied")
    return ExecPlan(steps, pid_ns_path, seccomp if plan.seccomp is not None else None,
                    plan.rootfs)


def _same_ns(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def namespaces_of(pid: int) -> tuple:
    """([(kind, path)] to join in order, the pid namespace path or None): the namespaces
    of `pid` that are not already ours."""
    joins = []
    for kind in NAMESPACE_ORDER:
        path = f"/proc/{pid}/ns/{_NS_FILES[kind]}"
        if os.path.exists(path) and not _same_ns(path, f"/proc/self/ns/{_NS_FILES[kind]}"):
            joins.append((kind, path))
    pid_path = f"/proc/{pid}/ns/pid"
    return joins, (None if _same_ns(pid_path, "/proc/self/ns/pid") else pid_path)


def cgroup_dirs_of(pid: int, host) -> list:
    """[(Hierarchy, dir)]: the cgroups of `pid` in the hierarchies the runtime manages."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    by_controllers = {}
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        by_controllers[tuple(sorted(controllers.split(","))) if controllers else ()] = path
    out = []
    for h in host.hierarchies:
        path = by_controllers.get(tuple(sorted(h.controllers)))
        if path is not None:
            out.append((h, h.dir_for(path)))
    return out


def failure_text(message: str) -> str:
    return message if message.startswith("OCI runtime") else f"{PREFIX}{message}: unknown"


def exec_process(bundle, container_id, init_pid, process: dict, *, stdio=None,
                 console_socket=None, clone_parent: bool = False) -> int:
    """Start `process` (an OCI process object; what it leaves out comes from config.json)
    in the container whose init is `init_pid`; return its host pid once execve succeeded.
    The caller must be single-threaded and reaps the process; with `clone_parent` the
    process is our parent's child (CLONE_PARENT) and our parent reaps it, also when it
    failed: the RuntimeFailure then names it in `child_pid`."""
    from .launch import _start_init
    bundle = os.path.abspath(bundle)
    if process.get("terminal") and console_socket is None:
        raise RuntimeFailure(failure_text("process.terminal is set but no console socket "
                                          "was given"))
    start = _start_time(init_pid)
    if start is None:
        raise RuntimeFailure(f"{PREFIX}container {container_id} is not running: unknown")
    try:
        mtime = os.stat(os.path.join(bundle, "config.json")).st_mtime_ns
    except OSError:
        mtime = None
    key = (bundle, mtime, container_id, init_pid, start, console_socket is not None,
           json.dumps(process, sort_keys=True))
    cached = _plans.get(key)
    if cached is None:
        cached = _prepare(bundle, container_id, init_pid, process, console_socket is not None)
        if len(_plans) >= 64:
            _plans.clear()
        _plans[key] = cached
        if _start_time(init_pid) != start:  # the init went while we planned
            raise RuntimeFailure(f"{PREFIX}container {container_id} is not running: unknown")
    template, programs = cached
    plan = ExecPlan(template.steps, template.pid_ns_path, template.seccomp, template.rootfs)
    if clone_parent:
        plan.clone_flags = _ns.CLONE_PARENT
    ctx = _apply.Context(plan.rootfs, console_socket, None, programs)
    own_pid_ns = None
    try:
        if plan.pid_ns_path is not None:
            # Enter the pid namespace for our children only, clone the process straight
            # into it (no intermediate process), and come back to our own at once.
            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _ns.enter(plan.pid_ns_path, _ns.CLONE_NEWPID)
            except OSError as e:
                raise RuntimeFailure(failure_text(f"join pid namespace: {e.strerror}")) from None
            plan.pid_ns_path = None
        return _start_init(plan, ctx, (stdio, 0), False)
    except RuntimeFailure as e:
        failure = RuntimeFailure(failure_text(e.message), e.exit_code)
        failure.child_pid = getattr(e, "child_pid", None)
        raise failure from None
    finally:
        if own_pid_ns is not None:
            try:
                _ns.setns(own_pid_ns, _ns.CLONE_NEWPID)
            finally:
                os.close(own_pid_ns)


_plans = {}  # (bundle, config mtime, init, its start time, process...) -> (plan, programs)


def _prepare(bundle, container_id, init_pid, process, console):
    """The plan and compiled seccomp programs of an exec (pure work plus /proc reads)."""
    from . import host as _host
    from . import cgroups as _cgroups
    from .launch import _program, load_config
    config = load_config(bundle)
    if not process.get("args") and not (config.get("process") or {}).get("args"):
        raise RuntimeFailure(failure_text("args must not be empty"))
    host = _host.current()
    joins, pid_ns = namespaces_of(init_pid)
    files = _cgroups.join_files(cgroup_dirs_of(init_pid, host), host.cgroup_v2)
    plan = build(config, process, bundle=bundle, container_id=container_id, host=host,
                 joins=joins, cgroup_files=files, pid_ns_path=pid_ns, console=console)
    programs = {plan.seccomp[0]: _program(plan.seccomp)} if plan.seccomp else {}
    _caps.last_cap()   # read here once, not by every child (DropBounding needs it)
    return plan, programs


def _start_time(pid):
    from skiff.linux.proc import start_time
    return start_time(pid)
