"""Perform a plan's steps in the container's first process. Imported before the fork, run
after it: nothing here may start threads or import lazily on the way to execve.

`run(steps, ctx)` performs each step and never returns on success (the last step execs).
A failing step raises `StepError(message, exit_code)`, with runc's and docker's wording.
"""

import os
import resource
import stat

from skiff.linux import caps as _caps
from skiff.linux import mount as _m
from skiff.linux import net as _net
from skiff.linux import ns as _ns
from skiff.linux import prctl as _prctl
from skiff.linux import seccomp as _seccomp
from skiff.linux import tty as _tty
from skiff.linux import uts as _uts

from . import steps as S


class StepError(Exception):
    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Context:
    """What the steps need besides their own data: descriptors, precompiled filters, and the
    container paths already resolved under the rootfs (`resolved`; a mount on a path drops
    what was resolved beneath it)."""
    __slots__ = ("rootfs", "console_fd", "fifo_fd", "programs", "exec_path", "on_ready",
                 "resolved", "idmap_fd", "bind_sources")

    def __init__(self, rootfs, console_fd=None, fifo_fd=None, programs=None, on_ready=None):
        self.rootfs = rootfs
        self.console_fd = console_fd
        self.fifo_fd = fifo_fd
        self.programs = programs or {}
        self.exec_path = None
        self.on_ready = on_ready
        self.resolved = {}
        self.idmap_fd = None   # user namespace: read end of "the id maps are written"
        self.bind_sources = {}   # user namespace: host path -> O_PATH descriptor


def go_strerror(err: int) -> str:
    """strerror as Go prints it ("no such file or directory"): docker matches on that text."""
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


def secure_join(root: str, unsafe: str) -> str:
    """root + unsafe, resolving symlinks as if root were "/" (no escape through .. or links).
    Components that do not exist are kept as they are."""
    parts = [p for p in unsafe.split("/") if p and p != "."]
    parts.reverse()
    done = []
    links = 0
    while parts:
        p = parts.pop()
        if p == "..":
            if done:
                done.pop()
            continue
        cur = root + "/" + "/".join(done + [p])
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            done.append(p)
            continue
        except NotADirectoryError:
            done.append(p)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(p)
            continue
        links += 1
        if links > 255:
            raise OSError(40, os.strerror(40), unsafe)
        dest = os.readlink(cur)
        if dest.startswith("/"):
            done = []
        parts.extend(reversed([q for q in dest.split("/") if q and q != "."]))
    return root.rstrip("/") + "/" + "/".join(done) if done else root


def _in_root(ctx, path):
    """secure_join under the rootfs, reusing the resolution of the parent directory."""
    if path == "/":
        return ctx.rootfs
    hit = ctx.resolved.get(path)
    if hit is not None:
        return hit
    parent, _, name = path.rpartition("/")
    base = ctx.resolved.get(parent) if parent else ctx.rootfs
    if base is not None and name not in ("..", ".", ""):
        cur = base + "/" + name
        try:
            islink = stat.S_ISLNK(os.lstat(cur).st_mode)
        except OSError:
            islink = False
        if not islink:
            ctx.resolved[path] = cur
            return cur
    out = secure_join(ctx.rootfs, path)
    ctx.resolved[path] = out
    return out


def _forget_below(ctx, path):
    if ctx.resolved:
        prefix = path.rstrip("/") + "/"
        for key in [k for k in ctx.resolved if k.startswith(prefix)]:
            del ctx.resolved[key]


def _create(target: str, kind: str, source: str) -> None:
    if kind == "auto":
        kind = "dir" if os.path.isdir(source) else "file"
    if kind == "dir":
        try:
            os.mkdir(target, 0o755)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(target, 0o755, exist_ok=True)
    elif kind == "file":
        if os.path.lexists(target):
            return
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


# --- handlers ---------------------------------------------------------------------------------

def _join_cgroups(step, ctx):
    for path in step.files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _join_namespace(step, ctx):
    _ns.enter(step.path, _ns.NAMESPACES[step.kind])


def _unshare(step, ctx):
    _ns.unshare(step.flags)


def _set_propagation(step, ctx):
    _m.mount(None, step.target, None, step.flags)


def _mount(step, ctx):
    target = _in_root(ctx, step.target) if step.in_root else step.target
    source = step.source
    if source in ctx.bind_sources:   # opened before we became the user namespace's root
        source = f"/proc/self/fd/{ctx.bind_sources[source]}"
    if step.create:
        _create(target, step.create, source)
    _m.mount(source, target, step.fstype or None, step.flags, step.data or None)
    if step.in_root:
        _forget_below(ctx, step.target)
    if step.remount_flags:
        _m.mount(None, target, None, step.remount_flags)
    for flags in step.propagation:
        _m.mount(None, target, None, flags)


_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _make_device(step, ctx):
    path = _in_root(ctx, step.path)
    try:
        os.mknod(path, _DEVICE_TYPES[step.kind] | (step.mode & 0o7777),
                 os.makedev(step.major, step.minor))
    except FileExistsError:
        return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        os.mknod(path, _DEVICE_TYPES[step.kind] | (step.mode & 0o7777),
                 os.makedev(step.major, step.minor))
    if step.uid or step.gid:
        os.chown(path, step.uid, step.gid)


def _symlink(step, ctx):
    parent, _, name = step.path.rpartition("/")
    path = _in_root(ctx, parent or "/").rstrip("/") + "/" + name
    try:
        os.symlink(step.target, path)
    except FileExistsError:
        if step.replace:
            os.unlink(path)
            os.symlink(step.target, path)


def _pivot_root(step, ctx):
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(step.root)
        _m.pivot_root(".", ".")
        os.fchdir(old)
        # the old root is stacked on the new one: detach it without telling any peer
        _m.mount(None, ".", None, _m.MS_SLAVE | _m.MS_REC)
        _m.umount2(".", _m.MNT_DETACH)
    finally:
        os.close(old)
    os.chdir("/")


def _mask_path(step, ctx):
    try:
        _m.mount("/dev/null", step.path, None, _m.MS_BIND)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        _m.mount("tmpfs", step.path, "tmpfs", _m.MS_RDONLY)


def _readonly_path(step, ctx):
    try:
        _m.mount(step.path, step.path, None, _m.MS_BIND | _m.MS_REC)
    except FileNotFoundError:
        return
    keep = os.statvfs(step.path).f_flag & (_m.MS_NOSUID | _m.MS_NODEV | _m.MS_NOEXEC)
    _m.mount(step.path, step.path, None,
             keep | _m.MS_BIND | _m.MS_REMOUNT | _m.MS_RDONLY | _m.MS_REC)


def _remount_root_readonly(step, ctx):
    keep = os.statvfs("/").f_flag & (_m.MS_NOSUID | _m.MS_NODEV | _m.MS_NOEXEC)
    _m.mount(None, "/", None, keep | _m.MS_BIND | _m.MS_REMOUNT | _m.MS_RDONLY)


def _sethostname(step, ctx):
    _uts.sethostname(step.name)


def _setdomainname(step, ctx):
    _uts.setdomainname(step.name)


def _link_up(step, ctx):
    _net.link_up(step.name)


def _sysctl(step, ctx):
    fd = os.open("/proc/sys/" + step.key.replace(".", "/"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, step.value.encode())
    finally:
        os.close(fd)


def _terminal(step, ctx):
    if ctx.console_fd is None:
        raise StepError("no console socket to send the terminal to")
    master = _tty.open_master("/dev/pts/ptmx")
    try:
        slave = _tty.open_peer(master)
        pts = f"/dev/pts/{_tty.pts_number(master)}"
        if step.height or step.width:
            _tty.set_size(master, step.height, step.width)
        if step.uid:
            os.fchown(slave, step.uid, -1)
        _tty.send_fd(ctx.console_fd, master, pts.encode())
    finally:
        os.close(master)
    os.close(ctx.console_fd)
    ctx.console_fd = None
    try:
        os.close(os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        _m.mount(pts, "/dev/console", None, _m.MS_BIND)
    except OSError:
        pass  # /dev is not ours to change (a read-only or bind-mounted /dev)
    os.setsid()
    _tty.set_controlling(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


_INFINITY = 2 ** 64 - 1


def _rl(value):
    return resource.RLIM_INFINITY if value >= _INFINITY or value < 0 else value


def _set_rlimit(step, ctx):
    try:
        resource.setrlimit(step.resource, (_rl(step.soft), _rl(step.hard)))
    except (ValueError, PermissionError):
        _soft, hard = resource.getrlimit(step.resource)
        shown = "unlimited" if hard == resource.RLIM_INFINITY else hard
        raise StepError(f"error setting rlimit {step.name} to soft {step.soft} hard "
                        f"{step.hard}: above the hard limit {shown} (raising it needs "
                        "CAP_SYS_RESOURCE)") from None


def _oom_score_adj(step, ctx):
    fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(step.value).encode())
    finally:
        os.close(fd)


def _umask(step, ctx):
    os.umask(step.mask)


def _drop_bounding(step, ctx):
    _caps.bounding_keep(step.keep)


def _open_bind_sources(step, ctx):
    for path in step.paths:
        try:
            ctx.bind_sources[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue   # the mount itself reports it


def _become_root(step, ctx):
    if ctx.idmap_fd is None or os.read(ctx.idmap_fd, 1) != b"1":
        raise StepError("the user namespace's id maps were not written")
    os.close(ctx.idmap_fd)
    ctx.idmap_fd = None
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)


def _set_user(step, ctx):
    os.setgroups(list(step.groups))
    if step.uid != 0:
        _prctl.set_keepcaps(True)
    os.setresgid(step.gid, step.gid, step.gid)
    os.setresuid(step.uid, step.uid, step.uid)


def _set_capabilities(step, ctx):
    _caps.capset(step.effective, step.permitted, step.inheritable)


def _set_ambient(step, ctx):
    _caps.ambient_set(step.caps)


def _no_new_privs(step, ctx):
    _prctl.set_no_new_privs()


def _chdir(step, ctx):
    try:
        os.chdir(step.path)
    except OSError as e:
        raise StepError(f'chdir to cwd ("{step.path}") set in config.json failed: '
                        f"{go_strerror(e.errno)}") from None


def _executable(path: str):
    """None if `path` is an executable file, else the errno (as Go's findExecutable)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return e.errno
    if stat.S_ISDIR(st.st_mode):
        return 21  # EISDIR
    return None if st.st_mode & 0o111 else 13  # EACCES


def _resolve_command(step, ctx):
    cmd = step.command
    if "/" in cmd:
        err = _executable(cmd)
        if err is None:
            ctx.exec_path = cmd
            return
        if err in (2, 20):  # ENOENT, ENOTDIR
            raise StepError(f'exec: "{cmd}": stat {cmd}: {go_strerror(err)}', 127)
        raise StepError(f'exec: "{cmd}": {go_strerror(err)}', 126)
    for d in step.path_env.split(":"):
        candidate = (d or ".") + "/" + cmd
        if _executable(candidate) is None:
            ctx.exec_path = candidate
            return
    raise StepError(f'exec: "{cmd}": executable file not found in $PATH', 127)


def _wait_start(step, ctx):
    if ctx.on_ready is not None:
        ctx.on_ready()
    fd = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.close(ctx.fifo_fd)
    ctx.fifo_fd = None


def _load_seccomp(step, ctx):
    _seccomp.load(ctx.programs[step.key], step.flags)


def _fork_init(step, ctx):
    import signal
    forwarded = [s for s in signal.valid_signals()
                 if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)]
    # blocked before the fork, so that no signal meets PID 1 without its handling; the
    # child unblocks them again before it execs
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded + [signal.SIGCHLD])
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        if os.isatty(0):
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(0, os.getpid())
            except OSError:
                pass
            signal.signal(signal.SIGTTOU, old)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        return
    _reaper(child, forwarded + [signal.SIGCHLD])


def _reaper(child, waited) -> None:
    """PID 1 of an `--init` container. Never returns."""
    import signal
    code = 255
    try:
        # the report pipe, the exec fifo, the console socket: the child holds its own
        # copies, and spawn() learns of the exec from the pipe closing
        os.closerange(3, 65536)
        # show as "init", not as a copy of the host process that started the container
        try:
            from skiff.linux import proc as _proc
            _prctl.set_name("init")
            _proc.overwrite_cmdline("init")
        except Exception:  # cosmetic: never let it end the container
            pass
        while True:
            signo = signal.sigwaitinfo(waited).si_signo
            if signo != signal.SIGCHLD:
                try:
                    os.kill(child, signo)
                except ProcessLookupError:
                    pass
                continue
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    os._exit(code)
                if pid == 0:
                    break
                if pid == child:
                    status = os.waitstatus_to_exitcode(status)
                    os._exit(128 - status if status < 0 else status)
    finally:
        os._exit(code)


def _exec(step, ctx):
    env = {}
    for item in step.env:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    path = ctx.exec_path or step.args[0]
    try:
        os.execve(path, list(step.args), env)
    except OSError as e:
        code = 127 if e.errno == 2 else 126
        raise StepError(f"exec {path}: {go_strerror(e.errno)}", code) from None


HANDLERS = {
    S.JoinCgroups: _join_cgroups, S.JoinNamespace: _join_namespace, S.Unshare: _unshare,
    S.BecomeRoot: _become_root, S.OpenBindSources: _open_bind_sources,
    S.SetPropagation: _set_propagation, S.Mount: _mount, S.MakeDevice: _make_device,
    S.Symlink: _symlink, S.PivotRoot: _pivot_root, S.MaskPath: _mask_path,
    S.ReadonlyPath: _readonly_path, S.RemountRootReadonly: _remount_root_readonly,
    S.SetHostname: _sethostname, S.SetDomainname: _setdomainname, S.LinkUp: _link_up,
    S.Sysctl: _sysctl, S.Terminal: _terminal, S.SetRlimit: _set_rlimit,
    S.OomScoreAdj: _oom_score_adj, S.Umask: _umask, S.DropBounding: _drop_bounding,
    S.SetUser: _set_user, S.SetCapabilities: _set_capabilities, S.SetAmbient: _set_ambient,
    S.NoNewPrivs: _no_new_privs, S.Chdir: _chdir, S.ResolveCommand: _resolve_command,
    S.WaitStart: _wait_start, S.LoadSeccomp: _load_seccomp, S.ForkInit: _fork_init,
    S.Exec: _exec,
}


def run(steps, ctx) -> None:
    for step in steps:
        try:
            HANDLERS[type(step)](step, ctx)
        except StepError:
            raise
        except OSError as e:
            err = go_strerror(e.errno) if e.errno else str(e)
            raise StepError(f"{step.describe()}: {err}") from None
