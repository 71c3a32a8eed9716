"""The monitor's exec fork server: a small process that clones exec'd processes for it.

Why: a process is cloned from a copy of its parent's memory, and that copy costs in
proportion to the parent's size, three times over (copying the page tables at clone, a
copy-on-write fault for each page the child's Python code touches, tearing the copy down at
execve). The monitor holds asyncio and every container's state (14 MB of anonymous memory);
this process imports only the runtime's exec path (about half that), so `exec` starts its
process 1-2 ms sooner. The process is cloned with CLONE_PARENT: it is the monitor's child,
reaped through a pidfd as before, and this server keeps nothing.

    server = ForkServer()          # in the monitor; nothing runs until the first exec
    pid = server.exec_process(bundle, cid, init_pid, process, stdio=(0, 1, 2))

The server starts in the background at the first call (that call, and any made while it
starts, run in the monitor itself, as every exec did before), so a monitor that never execs
pays nothing for it. It dies with the monitor (PR_SET_PDEATHSIG, and EOF on its socket).

Protocol, over a SOCK_SEQPACKET pair (one message each way per exec):
  request  JSON {bundle, id, init_pid, process, stdio: [i|null]*3, console: i|null}, the
           descriptors as SCM_RIGHTS (i indexes them)
  answer   JSON {pid} | {error, exit_code, child_pid}; a b"ready" message once at start
"""

from __future__ import annotations

import json
import os
import sys

MAX_MESSAGE = 1 << 20
MAX_FDS = 4


def _send(sock, payload: dict, fds=()) -> None:
    import array
    import socket

    data = json.dumps(payload).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


class ForkServer:
    """The monitor's handle on the server: `exec_process` as runtime.exec's."""

    def __init__(self):
        self._sock = None
        self._proc = None
        self._ready = False

    def exec_process(self, bundle, container_id, init_pid, process: dict, *, stdio=None,
                     console_socket=None) -> int:
        from skiff.runtime.exec import exec_process

        if not self._usable():
            return exec_process(bundle, container_id, init_pid, process, stdio=stdio,
                                console_socket=console_socket)
        return self._call(bundle, container_id, init_pid, process, stdio, console_socket)

    # -- the server's life --------------------------------------------------------------------

    def _usable(self) -> bool:
        if self._sock is None:
            self._start()
            return False
        if self._sock is False:   # could not be started: the monitor execs itself
            return False
        if self._ready:
            return True
        import select

        if select.select([self._sock], [], [], 0)[0]:
            self._ready = self._sock.recv(16) == b"ready"
            if not self._ready:
                self._stop()
        return self._ready

    def _start(self) -> None:
        import socket
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-m", "skiff.monitor.forkserver", str(theirs.fileno()),
                 str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        except OSError:
            ours.close()
            self._sock = False   # not startable: exec in the monitor from now on
            return
        finally:
            theirs.close()
        self._sock = ours

    def _stop(self) -> None:
        """Forget a server that broke; the next exec starts another."""
        if self._sock:
            self._sock.close()
        self._sock = None
        self._ready = False
        if self._proc is not None:
            try:
                self._proc.kill()
            except OSError:
                pass
            self._proc.wait()
            self._proc = None

    # -- one exec -----------------------------------------------------------------------------

    def _call(self, bundle, container_id, init_pid, process, stdio, console_socket) -> int:
        from skiff.errors import RuntimeFailure

        fds, slots = [], []
        for fd in stdio or (None, None, None):
            if fd is None:
                slots.append(None)
            else:
                slots.append(len(fds))
                fds.append(fd)
        console = None
        if console_socket is not None:
            console = len(fds)
            fds.append(console_socket)
        request = {"bundle": bundle, "id": container_id, "init_pid": init_pid,
                   "process": process, "stdio": slots if stdio is not None else None,
                   "console": console}
        try:
            _send(self._sock, request, fds)
            data = self._sock.recv(MAX_MESSAGE)
        except OSError as exc:
            self._stop()
            raise RuntimeFailure(f"exec fork server: {exc.strerror or exc}", 126) from None
        if not data:
            self._stop()
            raise RuntimeFailure("exec fork server: gone", 126)
        reply = json.loads(data)
        if "pid" in reply:
            return reply["pid"]
        child = reply.get("child_pid")
        if child:   # killed by the server, but ours to reap
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
        raise RuntimeFailure(reply.get("error", "exec failed"), reply.get("exit_code", 126))


# -- the server process -----------------------------------------------------------------------


def _receive(sock):
    import array
    import socket

    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(MAX_FDS * 4))
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
    return data, list(fds)


def serve(fd: int, parent: int) -> None:
    import signal
    import socket

    from skiff.errors import RuntimeFailure
    from skiff.linux import prctl
    from skiff.runtime.exec import exec_process

    prctl.prctl(prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:   # the monitor went before we could notice
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    sock.send(b"ready")
    while True:
        try:
            data, fds = _receive(sock)
        except OSError:
            return
        if not data:
            return
        try:
            req = json.loads(data)
            slots = req.get("stdio")
            stdio = None if slots is None else tuple(None if i is None else fds[i]
                                                     for i in slots)
            console = None if req.get("console") is None else fds[req["console"]]
            pid = exec_process(req["bundle"], req["id"], req["init_pid"], req["process"],
                               stdio=stdio, console_socket=console, clone_parent=True)
            reply = {"pid": pid}
        except RuntimeFailure as exc:
            reply = {"error": exc.message, "exit_code": exc.exit_code,
                     "child_pid": getattr(exc, "child_pid", None)}
        except Exception as exc:  # a bug or an OS failure: answer, never die
            reply = {"error": f"monitor: exec: {exc}", "exit_code": 126}
        finally:
            for fd_ in fds:
                os.close(fd_)
        try:
            _send(sock, reply)
        except OSError:
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
