"""The monitor's `exec` ops: processes started inside a running container (docker exec).

  exec        {id, exec_id, process, tty, stdin, detach}  -> {pid} | {error, exit_code}, then
              frames [stream:1][size:4 BE][data] (1 stdout, 2 stderr, 3 exit JSON) to the
              client and raw stdin bytes from it (a half-close is EOF on the process's stdin)
  exec_resize {exec_id, height, width}  -> {ok}

The process is the monitor's child (the fork server, forkserver.py, clones it with
CLONE_PARENT; the monitor itself until that server is up), reaped through a pidfd. Its
output goes to the client that asked for it, never to the container's log (as docker
does); a client that goes away leaves the process running, its output read and dropped. With `detach` its stdio is /dev/null (or a pty nobody reads but us).
"""

from __future__ import annotations

import asyncio
import json
import os

from skiff.monitor.server import HIGH_WATER, READ_SIZE, STREAM_EXIT, frame
from skiff.monitor.stdio import console_pair, pipes, read_chunk, receive_terminal

_TASKS: set = set()  # the loop holds tasks weakly


class ExecProcess:
    def __init__(self, exec_id: str, cid: str, tty: bool):
        self.id = exec_id
        self.cid = cid
        self.tty = tty
        self.pid: int | None = None
        self.stdin_fd: int | None = None      # pipe write end, or the pty master
        self.output_fds: dict[int, int] = {}  # fd -> stream
        self.writer: asyncio.StreamWriter | None = None
        self.status: int | None = None
        self.done: asyncio.Future | None = None
        self.paused = False  # output reading stopped until the client catches up


def _registry(monitor) -> dict:
    table = getattr(monitor, "_execs", None)
    if table is None:
        table = monitor._execs = {}
    return table


async def handle(monitor, op: str, req: dict, reader, writer) -> None:
    if op == "exec_resize":
        proc = _registry(monitor).get(req.get("exec_id", ""))
        if proc is not None and proc.tty and proc.stdin_fd is not None:
            from skiff.linux.tty import set_size
            try:
                set_size(proc.stdin_fd, int(req["height"]), int(req["width"]))
            except OSError:
                pass
        writer.write(b'{"ok": true}\n')
        await writer.drain()
        return
    await _exec(monitor, req, reader, writer)


def _forkserver(monitor):
    server = getattr(monitor, "_forkserver", None)
    if server is None:
        from skiff.monitor.forkserver import ForkServer
        server = monitor._forkserver = ForkServer()
    return server


def _start(monitor, req: dict) -> ExecProcess | dict:
    from skiff.errors import RuntimeFailure

    exec_process = _forkserver(monitor).exec_process

    box = monitor.boxes.get(req.get("id", ""))
    if box is None or box.pid is None or box.exit is not None:
        return {"error": f"container {req.get('id')} is not running", "exit_code": 126}
    proc = ExecProcess(req["exec_id"], box.id, bool(req.get("tty")))
    detach = bool(req.get("detach"))
    process = dict(req.get("process") or {}, terminal=proc.tty)
    child_fds: list[int] = []
    console = None
    try:
        if box.runtime is not None and not _user_namespaced(box.bundle):
            from skiff.monitor.server import oci_runtime
            stdio = None
            if not proc.tty:
                stdio, proc.stdin_fd, readers = pipes(
                    stdin=bool(req.get("stdin")) and not detach, output=not detach)
                child_fds += list(stdio)
                proc.output_fds.update(readers)
            pid, master = oci_runtime(box).exec(box.bundle, box.id, process, stdio=stdio,
                                                tty=proc.tty)
            if master is not None:
                proc.stdin_fd = master
                proc.output_fds[master] = 1
        elif proc.tty:
            console, theirs = console_pair()
            child_fds.append(theirs)
            pid = exec_process(box.bundle, box.id, box.pid, process, console_socket=theirs)
            master = receive_terminal(console)
            if master is None:
                os.kill(pid, 9)
                raise RuntimeFailure("the runtime sent no terminal", 125)
            proc.stdin_fd = master
            proc.output_fds[master] = 1
        else:
            stdio, proc.stdin_fd, readers = pipes(stdin=bool(req.get("stdin")) and not detach,
                                                  output=not detach)
            child_fds += list(stdio)
            proc.output_fds.update(readers)
            pid = exec_process(box.bundle, box.id, box.pid, process, stdio=stdio)
    except RuntimeFailure as exc:
        _close_all(proc)
        return {"error": exc.message, "exit_code": exc.exit_code}
    except Exception as exc:  # a bug or an OS failure: answer, never die
        _close_all(proc)
        return {"error": f"monitor: exec: {exc}", "exit_code": 126}
    finally:
        for fd in child_fds:
            os.close(fd)
        if console is not None:
            console.close()
    proc.pid = pid
    return proc


def _user_namespaced(bundle: str) -> bool:
    """A container in a user namespace: runc's exec enters that namespace first and then
    cannot enter a network namespace the engine made outside it, so skiff-runtime's exec
    (which enters it last) starts processes in such containers, whichever runtime made them."""
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            namespaces = (json.load(f).get("linux") or {}).get("namespaces") or ()
    except (OSError, ValueError):
        return False
    return any(n.get("type") == "user" for n in namespaces)


def _close_all(proc: ExecProcess) -> None:
    for fd in list(proc.output_fds):
        if fd != proc.stdin_fd:
            os.close(fd)
    proc.output_fds.clear()
    if proc.stdin_fd is not None:
        try:
            os.close(proc.stdin_fd)
        except OSError:
            pass
        proc.stdin_fd = None


async def _exec(monitor, req: dict, reader, writer) -> None:
    loop = monitor.loop
    started = _start(monitor, req)
    if isinstance(started, dict):
        writer.write(json.dumps(started).encode() + b"\n")
        await writer.drain()
        return
    proc = started
    table = _registry(monitor)
    table[proc.id] = proc
    proc.writer = writer
    proc.done = loop.create_future()
    writer.write(json.dumps({"pid": proc.pid}).encode() + b"\n")
    for fd in proc.output_fds:
        os.set_blocking(fd, False)
        loop.add_reader(fd, _on_output, proc, fd)
    if proc.stdin_fd is not None and not proc.tty:
        os.set_blocking(proc.stdin_fd, False)
    pidfd = os.pidfd_open(proc.pid)
    loop.add_reader(pidfd, _on_exit, loop, proc, pidfd)
    want_stdin = bool(req.get("stdin"))

    async def pump_stdin():
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            if want_stdin:
                await _write_stdin(proc, data)
        if want_stdin:
            _close_stdin(proc)

    pump = asyncio.ensure_future(pump_stdin())
    try:
        await proc.done
    finally:
        pump.cancel()
        table.pop(proc.id, None)
        if not writer.is_closing():
            writer.write(frame(STREAM_EXIT, json.dumps({"exit_code": proc.status}).encode()))
            writer.close()


def _send(proc: ExecProcess, stream: int, data: bytes) -> None:
    writer = proc.writer
    if writer is not None and not writer.is_closing():
        writer.write(frame(stream, data))


def _on_output(proc: ExecProcess, fd: int) -> None:
    data = read_chunk(fd)
    if data is None:
        return
    if not data:
        asyncio.get_running_loop().remove_reader(fd)
        del proc.output_fds[fd]
        if fd != proc.stdin_fd:
            os.close(fd)
        _maybe_finish(proc)
        return
    _send(proc, proc.output_fds[fd], data)
    writer = proc.writer
    if writer is not None and not writer.is_closing() and not proc.paused and \
            writer.transport.get_write_buffer_size() > HIGH_WATER:
        _pause_output(proc, writer)


def _pause_output(proc: ExecProcess, writer) -> None:
    """A slow client: stop reading the process's output until it has caught up (the process
    then blocks on its own writes, as with docker)."""
    loop = asyncio.get_running_loop()
    proc.paused = True
    for fd in proc.output_fds:
        loop.remove_reader(fd)

    async def resume():
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        proc.paused = False
        for fd in proc.output_fds:
            loop.add_reader(fd, _on_output, proc, fd)
        _maybe_finish(proc)

    task = loop.create_task(resume())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _on_exit(loop, proc: ExecProcess, pidfd: int) -> None:
    loop.remove_reader(pidfd)
    os.close(pidfd)
    try:
        _, status = os.waitpid(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        code = 255
    proc.status = 128 - code if code < 0 else code
    _maybe_finish(proc)


def _maybe_finish(proc: ExecProcess) -> None:
    """Done once the process is reaped and its output read (a pty: drained now, since
    children of the process may hold the slave open)."""
    if proc.status is None or proc.done.done() or proc.paused:
        return
    if proc.output_fds and not proc.tty:
        return
    loop = asyncio.get_running_loop()
    for fd in list(proc.output_fds):
        loop.remove_reader(fd)
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            _send(proc, 1, data)
    proc.output_fds.clear()
    if proc.stdin_fd is not None:
        try:
            os.close(proc.stdin_fd)
        except OSError:
            pass
        proc.stdin_fd = None
    proc.done.set_result(proc.status)


async def _write_stdin(proc: ExecProcess, data: bytes) -> None:
    view = memoryview(data)
    while view and proc.stdin_fd is not None:
        try:
            n = os.write(proc.stdin_fd, view)
            view = view[n:]
        except BlockingIOError:
            await asyncio.sleep(0.005)  # the process reads slowly
        except OSError:  # EPIPE: it closed its stdin
            return


def _close_stdin(proc: ExecProcess) -> None:
    if proc.stdin_fd is None:
        return
    if proc.tty:  # a terminal has no EOF of its own: a typed Ctrl-D
        try:
            os.write(proc.stdin_fd, b"\x04")
        except OSError:
            pass
        return
    os.close(proc.stdin_fd)
    proc.stdin_fd = None
