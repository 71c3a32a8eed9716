"""spawn() and cleanup(): from a bundle to a running container init, and back.

The caller (single-threaded) clones the init directly into its new namespaces, so the init
is the caller's own child whatever the caller's subreaper status. Only when config.json
joins an existing pid namespace does a short-lived intermediate process setns() into it and
clone the init with CLONE_PARENT. The init reports failures over a close-on-exec pipe: EOF
with no message means execve succeeded.
"""

import gc
import json
import os
import _signal  # the C module: no enum conversions (the child's time counts)

from skiff.errors import InvalidArgument, RuntimeFailure, SkiffError
from skiff.linux import ns as _ns
from skiff.linux import proc as _proc

from . import apply as _apply
from . import cgroups as _cgroups
from . import host as _host
from . import plan as _plan

_programs = {}


def load_config(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise RuntimeFailure(f"open {path}: no such file or directory") from None
    except ValueError as e:
        raise RuntimeFailure(f"{path}: invalid JSON: {e}") from None


def _program(source) -> bytes:
    kind, arg = source
    key = ("default",) + arg if kind == "default" else json.dumps(arg, sort_keys=True)
    bpf = _programs.get(key)
    if bpf is None:
        from skiff.linux import seccomp
        try:
            if kind == "default":
                from .profile import default_rules
                bpf = seccomp.blocklist([(names, seccomp.errno_action(err), cond)
                                         for names, err, cond in default_rules(arg)])
            else:
                bpf = seccomp.compile_profile(arg)
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"seccomp: {e}") from None
        if len(_programs) > 64:
            _programs.clear()
        _programs[key] = bpf
    return bpf


def spawn(bundle, container_id, *, stdio=None, console_socket=None, state_root=None,
          wait_start=False, preserve_fds=0) -> int:
    """Create the container of `bundle` and exec its process; return the init's host pid.

    `stdio`: (stdin, stdout, stderr) descriptors for the process (None: inherit ours).
    `console_socket`: a connected Unix socket; with process.terminal the pty master is sent
    over it before this returns. `state_root`: record the container under
    `<state_root>/<id>/` for the runc-style verbs. `wait_start`: stop just before execve
    until `start(container_id, state_root)` (runc's create); needs `state_root`.
    `preserve_fds`: pass descriptors 3 .. 3+N-1 on to the process (runc's --preserve-fds);
    every other descriptor is closed at exec.

    Raises RuntimeFailure (docker's wording; exit_code 125/126/127) and leaves nothing behind.
    """
    bundle = os.path.abspath(bundle)
    config = load_config(bundle)
    host = _host.current()
    try:
        plan = _plan.build(config, bundle=bundle, container_id=container_id, host=host,
                           console=console_socket is not None, wait_start=wait_start)
    except InvalidArgument as e:
        raise RuntimeFailure(e.message) from None
    if not os.path.isdir(plan.rootfs):
        raise RuntimeFailure(f"rootfs ({plan.rootfs}) does not exist")
    programs = {plan.seccomp[0]: _program(plan.seccomp)} if plan.seccomp else {}

    state_dir = None
    fifo_fd = None
    if state_root is not None:
        from . import state as _state
        try:
            state_dir = _state.make_dir(state_root, container_id)
        except SkiffError as e:
            raise RuntimeFailure(e.message) from None
    made = []
    pid = None
    try:
        if wait_start:
            if state_dir is None:
                raise RuntimeFailure("wait_start needs a state_root")
            fifo = os.path.join(state_dir, "exec.fifo")
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)  # whatever our umask: a non-root init opens it to write
            fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        made = _cgroups.create(plan.cgroups, plan.cgroup_writes, host.cgroup_v2)
        ctx = _apply.Context(plan.rootfs, console_socket, fifo_fd, programs)
        pid = _start_init(plan, ctx, (stdio, preserve_fds), wait_start)
        if state_dir is not None:
            from . import state as _state
            from skiff.linux.proc import start_time
            _state.write(state_root, container_id, {
                "ociVersion": config.get("ociVersion", "1.0.2"), "id": container_id,
                "pid": pid, "pid_start": start_time(pid), "bundle": bundle,
                "rootfs": plan.rootfs, "created": _now(),
                "cgroup_dirs": [d for _h, d in plan.cgroups],
                "annotations": config.get("annotations") or {}})
        return pid
    except BaseException:
        if pid is not None:  # the init runs, but we could not record it: take it back
            _reap(pid)
        _undo_cgroups(plan.cgroups, made)
        if state_dir is not None:
            from . import state as _state
            _state.remove(state_root, container_id)
        raise
    finally:
        if fifo_fd is not None:
            os.close(fifo_fd)


def _now() -> str:
    import time
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _undo_cgroups(dirs, made) -> None:
    try:
        _cgroups.remove(dirs)
    except RuntimeFailure:
        pass
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _start_init(plan, ctx, stdio, wait_start) -> int:
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = None
    stdio = stdio + (_handled_signals(),)
    try:
        if plan.pid_ns_path:
            pid = _via_intermediate(plan, ctx, stdio, r, w)
        elif plan.id_maps is not None:
            pid = _clone_user_namespaced(plan, ctx, stdio, r, w)
        else:
            try:
                pid = _proc.clone(plan.clone_flags)
            except OSError as e:
                raise RuntimeFailure(f"clone: {_apply.go_strerror(e.errno)}") from None
            if pid == 0:
                os.close(r)
                _init(plan.steps, ctx, stdio, w)
        os.close(w)
        w = None
        failure = _read_report(r, wait_start)
    except BaseException as e:
        if pid:
            _reap(pid)
            _name_child(e, pid, plan)
        raise
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
    if failure is not None:
        _reap(pid)
        err = RuntimeFailure(failure.get("message", "container init failed"),
                             failure.get("code", 125))
        _name_child(err, pid, plan)
        raise err
    return pid


def _name_child(err: BaseException, pid: int, plan) -> None:
    """A CLONE_PARENT child that failed was killed but is our parent's to reap: say which."""
    if plan.clone_flags & _ns.CLONE_PARENT and isinstance(err, RuntimeFailure):
        err.child_pid = pid


def _clone_user_namespaced(plan, ctx, stdio, r, w) -> int:
    """Clone an init into a new user namespace: the namespaces it joins by path are entered
    by us around the clone (it could not enter them from its user namespace), then we write
    its id maps and let it go on (its BecomeRoot step waits for that)."""
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    own = []
    pid = None
    try:
        try:
            for kind, path in plan.parent_joins:
                flag = _ns.NAMESPACES[kind]
                own.append((os.open(f"/proc/self/ns/{_NS_FILE[kind]}",
                                    os.O_RDONLY | os.O_CLOEXEC), flag))
                _ns.enter(path, flag)
            pid = _proc.clone(plan.clone_flags)
        except OSError as e:
            raise RuntimeFailure(f"clone into a user namespace: {_apply.go_strerror(e.errno)}") \
                from None
        finally:
            if pid != 0:   # back to our own namespaces (in the child they are its)
                for fd, flag in reversed(own):
                    _ns.setns(fd, flag)
                    os.close(fd)
        if pid == 0:
            os.close(r)
            os.close(go_w)
            ctx.idmap_fd = go_r
            _init(plan.steps, ctx, stdio, w)
        try:
            uid_maps, gid_maps = plan.id_maps
            for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n"
                                    for m in maps))
        except OSError as e:
            _reap(pid)
            raise RuntimeFailure(f"writing the user namespace's id maps: "
                                 f"{_apply.go_strerror(e.errno)}") from None
        os.write(go_w, b"1")
        return pid
    finally:
        os.close(go_r)
        os.close(go_w)


_NS_FILE = {"network": "net", "ipc": "ipc", "uts": "uts"}


def _via_intermediate(plan, ctx, stdio, r, w) -> int:
    """setns() into the configured pid namespace in a throwaway child, which clones the
    init as our child (CLONE_PARENT) and reports its pid."""
    helper = os.fork()
    if helper == 0:
        try:
            os.close(r)
            _ns.enter(plan.pid_ns_path, _ns.CLONE_NEWPID)
            pid = _proc.clone(plan.clone_flags | _ns.CLONE_PARENT)
            if pid == 0:
                _init(plan.steps, ctx, stdio, w)
            os.write(w, b"P%d\n" % pid)
            os._exit(0)
        except BaseException as e:
            msg = f"join pid namespace {plan.pid_ns_path}: {getattr(e, 'strerror', e)}"
            _send(w, {"message": msg, "code": 125})
            os._exit(125)
    _, status = os.waitpid(helper, 0)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(r, 1)
        if not chunk:
            break
        line += chunk
    if not line.startswith(b"P"):
        failure = _parse_failure(line) or {"message": "pid namespace helper failed"}
        _reap_named(r)  # the init reported before the helper named it: reap it still
        raise RuntimeFailure(failure["message"], failure.get("code", 125))
    return int(line[1:])


def _reap_named(r) -> None:
    """Reap the process whose "P<pid>" line the (exited) helper left in the pipe, if any."""
    os.set_blocking(r, False)
    try:
        rest = os.read(r, 65536)
    except OSError:
        rest = b""
    for part in rest.split(b"\n"):
        if part.startswith(b"P") and part[1:].isdigit():
            _reap(int(part[1:]))


def _send(fd, failure: dict) -> None:
    try:
        os.write(fd, b"E" + json.dumps(failure).encode() + b"\n")
    except OSError:
        pass


def _parse_failure(line: bytes):
    if line.startswith(b"E"):
        try:
            return json.loads(line[1:])
        except ValueError:
            return {"message": line[1:].decode(errors="replace")}
    return None


def _read_report(r, wait_start):
    buf = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        buf += chunk
        if wait_start and buf.startswith(b"R\n"):
            return None
    if not buf:
        if wait_start:
            return {"message": "container init exited before it was ready"}
        return None
    return _parse_failure(buf.split(b"\n", 1)[0]) or {"message": "container init failed"}


def _reap(pid) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _init(steps, ctx, stdio, report_fd) -> None:
    """The container's first process, from clone to execve. Never returns."""
    code = 125
    report_to = [report_fd]
    try:
        gc.disable()
        os.umask(0)
        stdio, preserve, handled = stdio
        _reset_signals(handled)
        if stdio is not None:
            _dup_stdio(stdio)
        for fd in range(3, 3 + preserve):
            os.set_inheritable(fd, True)
        _proc.cloexec_from(3 + preserve)

        def ready():
            os.write(report_fd, b"R\n")
            ctx.on_ready = None
            report_to[0] = 2
        ctx.on_ready = ready
        _apply.run(steps, ctx)
        message = "execve returned"
    except _apply.StepError as e:
        message, code = e.message, e.exit_code
    except BaseException as e:  # a bug: still report it and exit
        message = f"container init: {type(e).__name__}: {e}"
    try:
        if report_to[0] == 2:
            os.write(2, f"skiff-runtime: {message}\n".encode())
        else:
            _send(report_fd, {"message": message, "code": code})
    finally:
        os._exit(code)


def _handled_signals() -> tuple:
    """The signals whose disposition is not the default (Python handlers, SIG_IGN). The
    caller scans them before the clone, so that the child, whose every touched page is a
    copy-on-write fault, only resets these."""
    handled = []
    for sig in _signal.valid_signals():
        try:
            handler = _signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        if handler is not None and handler != _signal.SIG_DFL:
            handled.append(sig)
    return tuple(handled)


def _reset_signals(handled) -> None:
    try:
        _signal.set_wakeup_fd(-1)  # the caller's event loop must not hear our signals
    except ValueError:  # not the main thread: there is no wakeup fd to drop
        pass
    for sig in handled:
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (ValueError, OSError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def _dup_stdio(stdio) -> None:
    copies = [os.dup(fd) if fd is not None else None for fd in stdio]
    for target, fd in enumerate(copies):
        if fd is not None:
            os.dup2(fd, target, inheritable=True)
            os.close(fd)


def start(container_id: str, state_root: str, timeout: float | None = None) -> None:
    """Release an init that spawn(wait_start=True) left waiting (runc's `start`)."""
    from . import state as _state
    doc = _state.read(state_root, container_id)
    fifo = os.path.join(state_root, container_id, _state.FIFO)
    status = _state.status(state_root, doc)
    if status == "stopped":
        raise RuntimeFailure("cannot start a container that has stopped")
    if status == "running":
        raise RuntimeFailure("cannot start an already running container")
    import select
    import time
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 1)
                except BlockingIOError:
                    data = b""
                if data:
                    break
            if not _state.alive(doc):
                raise RuntimeFailure("cannot start a container that has stopped")
            if deadline is not None and time.monotonic() > deadline:
                raise RuntimeFailure("timed out waiting for the container init")
    finally:
        os.close(fd)
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass


def cleanup(bundle_or_spec, container_id, *, state_root=None) -> None:
    """Remove what spawn() left for a container whose init has been reaped: its cgroups
    (killing anything still in them) and its state directory."""
    dirs = None
    if state_root is not None:
        from . import state as _state
        try:
            recorded = _state.read(state_root, container_id).get("cgroup_dirs")
        except SkiffError:
            recorded = None
        if recorded is not None:
            dirs = [(None, d) for d in recorded]
    if dirs is None:
        if isinstance(bundle_or_spec, dict):
            config = bundle_or_spec
        else:
            try:
                config = load_config(os.path.abspath(bundle_or_spec))
            except RuntimeFailure:
                config = {}
        linux = config.get("linux") or {}
        try:
            dirs = _cgroups.paths(linux.get("cgroupsPath"), container_id, _host.current())
        except InvalidArgument:
            dirs = []
    _cgroups.remove(dirs)
    if state_root is not None:
        from . import state as _state
        _state.remove(state_root, container_id)
