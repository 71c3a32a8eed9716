"""`run [--bundle DIR] [--detach] [--pid-file F] [--console-socket PATH] ID`: create and
start in one go. In the foreground it waits for the container, forwards signals to it, and
exits with its status (128+N when killed by signal N). With process.terminal and no
--console-socket, it receives the pty itself and relays it to its own stdio."""

import os
import signal

from . import console_fd, write_pid_file

_FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
            signal.SIGUSR2, signal.SIGWINCH)


def run(opts) -> int:
    from skiff.linux import prctl
    from skiff.runtime.launch import cleanup, spawn
    cid = opts.args[0]
    bundle = os.path.abspath(opts.bundle or os.getcwd())
    if not opts.detach:
        prctl.set_child_subreaper()
    relay = None
    sock = None
    if opts.console_socket:
        sock = console_fd(opts.console_socket)
    elif not opts.detach and _wants_terminal(bundle):
        import socket
        relay, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sock = theirs.detach()
    try:
        pid = spawn(bundle, cid, console_socket=sock, state_root=opts.root,
                    preserve_fds=int(opts.preserve_fds or 0))
    finally:
        if sock is not None:
            os.close(sock)
    if opts.pid_file:
        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    master = None
    if relay is not None:
        from skiff.linux.tty import recv_fd
        master, _name = recv_fd(relay)
        relay.close()
    for sig in _FORWARD:
        signal.signal(sig, _forwarder(pid, master))
    try:
        if master is not None:
            status = _relay(pid, master)
        else:
            status = _wait(pid)
    finally:
        if not opts.keep:
            cleanup(bundle, cid, state_root=opts.root)
    return status


def _wants_terminal(bundle) -> bool:
    import json
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool((json.loads(f.read()).get("process") or {}).get("terminal"))
    except (OSError, ValueError):
        return False


def _forwarder(pid, master):
    def forward(sig, _frame):
        if sig == signal.SIGWINCH:
            if master is not None:
                _copy_winsize(master)
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return forward


def _copy_winsize(master) -> None:
    import fcntl
    import termios
    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _exit_status(status) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _wait(pid) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return _exit_status(status)
        except InterruptedError:
            continue


def _relay(pid, master) -> int:
    """Copy stdin -> pty and pty -> stdout until the pty closes, then reap."""
    import select
    import termios
    import tty
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_winsize(master)
    stdin_open = True
    try:
        while True:
            fds = [master] + ([0] if stdin_open else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave descriptor closed
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    stdin_open = False
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    return _wait(pid)
