"""`exec [--process process.json | ARGS...] [-t] [--console-socket PATH] [-d] [--pid-file F]
[--cwd DIR] [--env K=V]... [--user UID[:GID]] ID`: run a new process in a running container.

In the foreground it waits for the process, forwards signals to it and exits with its status;
with -t and no --console-socket it receives the pty itself and relays it to its own stdio.
"""

import json
import os
import signal

from . import console_fd, write_pid_file
from .run import _FORWARD, _forwarder, _relay, _wait


def _process(opts) -> dict:
    from skiff.errors import InvalidArgument
    if opts.process:
        with open(opts.process, "rb") as f:
            process = json.loads(f.read())
        if not isinstance(process, dict):
            raise InvalidArgument(f"{opts.process}: not a JSON object")
    else:
        if len(opts.args) < 2:
            raise InvalidArgument("exec: no command given (ARGS or --process)")
        process = {"args": opts.args[1:]}
    if opts.tty:
        process["terminal"] = True
    if opts.cwd:
        process["cwd"] = opts.cwd
    if opts.env:
        process["env"] = list(process.get("env") or []) + list(opts.env)
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return process


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.linux import prctl
    from skiff.runtime import state as st
    from skiff.runtime.exec import exec_process
    cid = opts.args[0]
    doc = st.read(opts.root, cid)
    if st.status(opts.root, doc) != "running":
        raise RuntimeFailure("cannot exec in a stopped container")
    process = _process(opts)
    # Defaults from the container's config, then what the recorded env says.
    if "env" in process and not opts.process:
        base = _config_env(doc["bundle"])
        process["env"] = base + [e for e in process["env"] if e not in base]
    if not opts.detach:
        prctl.set_child_subreaper()
    relay = sock = None
    if opts.console_socket:
        sock = console_fd(opts.console_socket)
    elif process.get("terminal"):
        if opts.detach:
            raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                                 "console socket")
        import socket
        relay, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sock = theirs.detach()
    try:
        pid = exec_process(doc["bundle"], cid, doc["pid"], process, console_socket=sock)
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
    return _relay(pid, master) if master is not None else _wait(pid)


def _config_env(bundle) -> list:
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return list((json.loads(f.read()).get("process") or {}).get("env") or [])
    except (OSError, ValueError):
        return []
