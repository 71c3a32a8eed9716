"""skiff-monitor: the parent of every container's init, one process for many containers.

Why one process: a Python process per container costs several MB; one event loop holding every
container's pipes costs a few KB per container (the engine's cost per running container).

It is a child subreaper, so container inits (forked by `runtime.spawn` through a short-lived
intermediate process) become its children; it reaps them through pidfds, writes their output to
json-file logs, keeps their exit status in `exit.json`, and keeps running when skiffd stops so
that containers survive a daemon restart.

Protocol (Unix socket, one request per connection, a JSON line each way; see client.py):
  start   {id, bundle, tty, stdin, stdin_once, log_path, exit_path}  -> {pid} | {error, exit_code}
  attach  {id, stdin}  -> {ok, tty}, then frames [stream:1][size:4 BE][data] to the client
          (stream 1 stdout, 2 stderr, 3 exit JSON) and raw stdin bytes from it
  wait    {id}         -> {exit_code, finished_at} once it has exited, {unknown} if not known
  kill    {id, signal} ; resize {id, height, width} ; list {} -> {containers: [...]}
  events  {}           -> one JSON line per container exit, for as long as the client stays
  exec, exec_resize    -> processes started in a running container: see execs.py
Single-threaded on purpose: it forks containers, and forking a threaded process is unsafe.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import json
import os
import signal
import struct
import sys
import termios

from skiff.monitor import oom
from skiff.monitor.logfile import JsonFileLog
from skiff.monitor.stdio import console_pair, pipes, read_chunk, receive_terminal
from skiff.timefmt import rfc3339_nano

PR_SET_CHILD_SUBREAPER = 36
STREAM_EXIT = 3
STDIN_END = 1  # framed stdin from skiffd: [kind:1][size:4][data], kind 0 data, 1 end
HIGH_WATER = 1 << 20  # bytes queued to one attached client before we stop reading output
READ_SIZE = 64 * 1024


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BI", stream, len(data)) + data


class Box:
    """One container under the monitor: its init, its stdio and who listens to it."""

    def __init__(self, cid: str):
        self.id = cid
        self.pid: int | None = None
        self.tty = False
        self.stdin_once = False
        self.stdin_fd: int | None = None  # pipe write end, or the pty master
        self.output_fds: dict[int, int] = {}  # fd -> stream
        self.log: JsonFileLog | None = None
        self.subscribers: set[asyncio.StreamWriter] = set()
        self.pending_stdin: list[bytes] = []
        self.stdin_eof_pending = False
        self.exit: dict | None = None
        self.exit_path: str | None = None
        self.bundle: str | None = None
        self.exited_status: int | None = None
        self.waiters: list[asyncio.Future] = []
        self.paused = False
        self.runtime: dict | None = None  # another OCI runtime (oci_runtime.py); None: ours


def oci_runtime(box: Box):
    from skiff.monitor.oci_runtime import OciRuntime
    return OciRuntime.from_request(box.runtime)


class Monitor:
    def __init__(self, loop: asyncio.AbstractEventLoop, state_dir: str = "/run/skiff"):
        self.loop = loop
        self.state_dir = state_dir   # skiffd's exec-root, where our socket is
        self.boxes: dict[str, Box] = {}
        self.event_listeners: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------------ start
    def start(self, req: dict) -> dict:
        from skiff import runtime
        from skiff.errors import RuntimeFailure

        cid = req["id"]
        box = self.boxes.get(cid)
        if box is not None and box.pid is not None and box.exit is None:
            return {"error": f"container {cid} is already running", "exit_code": 125}
        if box is None or box.exit is not None:
            old = box
            box = Box(cid)
            if old is not None:
                box.subscribers = old.subscribers if old.exit is None else set()
            self.boxes[cid] = box
        box.tty = bool(req.get("tty"))
        box.stdin_once = bool(req.get("stdin_once"))
        box.exit_path = req.get("exit_path")
        box.bundle = req["bundle"]
        if req.get("log_path"):
            box.log = JsonFileLog(req["log_path"], req.get("log_max_size"),
                                  req.get("log_max_files") or 1, req.get("log_attrs"))
        child_fds: list[int] = []
        console = None
        try:
            from skiff.monitor.oci_runtime import recorded
            box.runtime = req.get("runtime") or recorded(box.bundle)
            if box.runtime is not None:
                stdio = None
                if not box.tty:
                    stdio, box.stdin_fd, readers = pipes(stdin=bool(req.get("stdin")),
                                                         output=True)
                    child_fds += list(stdio)
                    box.output_fds.update(readers)
                pid, master = oci_runtime(box).create(box.bundle, cid, stdio=stdio,
                                                      tty=box.tty)
                if master is not None:
                    os.set_blocking(master, False)
                    box.stdin_fd = master
                    box.output_fds[master] = 1
            elif box.tty:
                console, theirs = console_pair()
                child_fds.append(theirs)
                pid = runtime.spawn(self._own_bundle(box), cid, stdio=None,
                                    console_socket=theirs)
                master = receive_terminal(console)
                if master is None:
                    raise RuntimeFailure("the runtime sent no terminal", 125)
                os.set_blocking(master, False)
                box.stdin_fd = master
                box.output_fds[master] = 1
            else:
                stdio, box.stdin_fd, readers = pipes(stdin=bool(req.get("stdin")), output=True)
                child_fds += list(stdio)
                box.output_fds.update(readers)
                pid = runtime.spawn(self._own_bundle(box), cid, stdio=stdio)
        except RuntimeFailure as exc:
            self._discard_fds(box)
            if box.log:
                box.log.close()
            self.boxes.pop(cid, None)
            if box.runtime is None:
                self._release_own_bundle(box)
            return {"error": exc.message, "exit_code": exc.exit_code}
        except Exception as exc:  # a bug or an OS failure: still answer, never die
            self._discard_fds(box)
            self.boxes.pop(cid, None)
            return {"error": f"monitor: {exc}", "exit_code": 125}
        finally:
            for fd in child_fds:
                os.close(fd)
            if console is not None:
                console.close()
        box.pid = pid
        for fd in box.output_fds:
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, self._on_output, box, fd)
        if box.stdin_fd is not None and not box.tty:
            os.set_blocking(box.stdin_fd, False)
        for data in box.pending_stdin:
            self._write_stdin(box, data)
        box.pending_stdin.clear()
        if box.stdin_eof_pending and box.stdin_once:
            self._close_stdin(box)
        pidfd = os.pidfd_open(pid)
        self.loop.add_reader(pidfd, self._on_exit, box, pidfd)
        return {"pid": pid}

    def _own_bundle(self, box: Box) -> str:
        """The bundle skiff-runtime is given: the container's own, or for a new user
        namespace a prepared one whose rootfs we mount here through idmapped layers (the
        init could not mount the image's overlay usefully from its user namespace)."""
        from skiff.monitor.oci_runtime import prepare_bundle, user_namespaced
        if not user_namespaced(box.bundle):
            return box.bundle
        return prepare_bundle(box.bundle, os.path.join(self.state_dir, "runtime-skiff",
                                                       "layers", box.id))

    def _release_own_bundle(self, box: Box) -> None:
        from skiff.monitor.oci_runtime import release_bundle, user_namespaced
        if box.bundle and user_namespaced(box.bundle):
            release_bundle(box.bundle)

    def _discard_fds(self, box: Box) -> None:
        for fd in list(box.output_fds):
            os.close(fd)
        box.output_fds.clear()
        if box.stdin_fd is not None and box.stdin_fd not in ():
            try:
                os.close(box.stdin_fd)
            except OSError:
                pass
            box.stdin_fd = None

    # ------------------------------------------------------------------ output
    def _on_output(self, box: Box, fd: int) -> None:
        data = read_chunk(fd)
        if data is None:
            return
        stream = box.output_fds[fd]
        if not data:
            self.loop.remove_reader(fd)
            del box.output_fds[fd]
            if fd != box.stdin_fd:
                os.close(fd)
            self._maybe_finish(box)
            return
        if box.log:
            box.log.write(stream, data)
        packet = frame(stream, data)
        for writer in list(box.subscribers):
            if writer.is_closing():
                box.subscribers.discard(writer)
                continue
            writer.write(packet)
            if writer.transport.get_write_buffer_size() > HIGH_WATER and not box.paused:
                self._pause(box)

    def _pause(self, box: Box) -> None:
        """A slow attached client: stop reading output until it has caught up (as docker
        does, the container then blocks on its own writes)."""
        box.paused = True
        for fd in box.output_fds:
            self.loop.remove_reader(fd)

        async def resume():
            for writer in list(box.subscribers):
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    box.subscribers.discard(writer)
            box.paused = False
            for fd in box.output_fds:
                self.loop.add_reader(fd, self._on_output, box, fd)

        self.loop.create_task(resume())

    # ------------------------------------------------------------------ exit
    def _on_exit(self, box: Box, pidfd: int) -> None:
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(box.pid, 0)
        except ChildProcessError:
            status = 255 << 8
        code = os.waitstatus_to_exitcode(status)
        box.exited_status = 128 - code if code < 0 else code
        self._maybe_finish(box)

    def _maybe_finish(self, box: Box) -> None:
        """Finish once the init is reaped AND all its output is read, so that nobody
        learns of the exit before they have every byte."""
        if box.exited_status is None or box.exit is not None:
            return
        if box.output_fds and not box.tty:
            return
        for fd in list(box.output_fds):  # a pty master: the slave is gone with the init
            self.loop.remove_reader(fd)
            self._drain_pty(box, fd)
        box.output_fds.clear()
        if box.stdin_fd is not None:
            try:
                os.close(box.stdin_fd)
            except OSError:
                pass
            box.stdin_fd = None
        if box.log:
            box.log.close()
            box.log = None
        box.exit = {"id": box.id, "exit_code": box.exited_status, "finished_at": rfc3339_nano(),
                    # read before runtime.cleanup below removes the cgroup that counts it
                    "oom_killed": oom.oom_killed(box.bundle, box.id)}
        if box.exit_path:
            tmp = box.exit_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(box.exit, f)
            os.replace(tmp, box.exit_path)
        try:
            from skiff import runtime

            if box.runtime is not None:
                oci_runtime(box).delete(box.bundle, box.id)
            else:
                runtime.cleanup(box.bundle, box.id)
                self._release_own_bundle(box)
        except Exception as exc:  # never lose the exit status over a cgroup that lingers
            print(f"skiff-monitor: cleanup of {box.id}: {exc}", file=sys.stderr)
        packet = frame(STREAM_EXIT, json.dumps(box.exit).encode())
        for writer in box.subscribers:
            if not writer.is_closing():
                writer.write(packet)
                writer.close()
        box.subscribers.clear()
        for fut in box.waiters:
            if not fut.done():
                fut.set_result(box.exit)
        box.waiters.clear()
        line = json.dumps({"event": "exit", **box.exit}).encode() + b"\n"
        for writer in list(self.event_listeners):
            if writer.is_closing():
                self.event_listeners.discard(writer)
            else:
                writer.write(line)
        # Keep the exit a while for late waiters; exit.json outlives us anyway.
        self.loop.call_later(60, self._forget, box)

    def _drain_pty(self, box: Box, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            if box.log:
                box.log.write(1, data)
            for writer in box.subscribers:
                if not writer.is_closing():
                    writer.write(frame(1, data))
        # The master is also box.stdin_fd, which the caller closes once.

    def _forget(self, box: Box) -> None:
        if self.boxes.get(box.id) is box:
            del self.boxes[box.id]

    # ------------------------------------------------------------------ stdin
    def _write_stdin(self, box: Box, data: bytes) -> None:
        if box.stdin_fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(box.stdin_fd, view)
                view = view[n:]
            except BlockingIOError:
                # The container reads slowly; block briefly rather than drop input.
                import select

                select.select([], [box.stdin_fd], [], 1.0)
            except OSError:  # EPIPE: the container closed its stdin
                return

    def _close_stdin(self, box: Box) -> None:
        if box.tty:
            # A terminal has no EOF of its own: send the EOF character, as a typed Ctrl-D.
            if box.stdin_fd is not None:
                try:
                    os.write(box.stdin_fd, b"\x04")
                except OSError:
                    pass
            return
        if box.stdin_fd is not None:
            os.close(box.stdin_fd)
            box.stdin_fd = None

    # ------------------------------------------------------------------ requests
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            req = json.loads(line)
            op = req.get("op")
            if op == "attach":
                await self._attach(req, reader, writer)
                return
            if op in ("exec", "exec_resize"):
                from skiff.monitor import execs
                await execs.handle(self, op, req, reader, writer)
                return
            if op == "events":
                self.event_listeners.add(writer)
                writer.write(b'{"ok": true}\n')
                await reader.read()  # until the client goes
                self.event_listeners.discard(writer)
                return
            if op == "wait":
                reply = await self._wait(req)
            else:
                reply = self._simple(op, req)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, json.JSONDecodeError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    def _simple(self, op: str, req: dict) -> dict:
        if op == "start":
            return self.start(req)
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "list":
            return {"containers": [
                {"id": b.id, "pid": b.pid, "running": b.exit is None and b.pid is not None,
                 "exit": b.exit} for b in self.boxes.values()]}
        box = self.boxes.get(req.get("id", ""))
        if box is None or box.pid is None:
            return {"unknown": True}
        if op == "kill":
            if box.exit is not None:
                return {"error": "not running"}
            sig = int(req.get("signal", signal.SIGTERM))
            os.kill(box.pid, sig)
            if sig == signal.SIGKILL:  # a paused container dies once thawed
                from skiff.runtime.freezer import thaw_if_frozen
                thaw_if_frozen(box.pid)
            return {"ok": True}
        if op == "resize":
            if box.tty and box.stdin_fd is not None:
                size = struct.pack("HHHH", int(req["height"]), int(req["width"]), 0, 0)
                fcntl.ioctl(box.stdin_fd, termios.TIOCSWINSZ, size)
            return {"ok": True}
        return {"error": f"unknown op {op!r}"}

    async def _wait(self, req: dict) -> dict:
        box = self.boxes.get(req.get("id", ""))
        if box is None or box.pid is None:
            return {"unknown": True}
        if box.exit is not None:
            return box.exit
        fut = self.loop.create_future()
        box.waiters.append(fut)
        return await fut

    async def _attach(self, req: dict, reader, writer) -> None:
        cid = req["id"]
        box = self.boxes.get(cid)
        if box is None or box.exit is not None:
            if req.get("before_start"):
                box = Box(cid)  # attach before start: output is ours from the first byte
                self.boxes[cid] = box
            else:
                writer.write(json.dumps({"unknown": True}).encode() + b"\n")
                return
        writer.write(json.dumps({"ok": True, "tty": box.tty}).encode() + b"\n")
        if req.get("stdout", True) or req.get("stderr", True):
            box.subscribers.add(writer)
        want_stdin = bool(req.get("stdin"))
        framed = bool(req.get("stdin_framed"))
        try:
            ended = False  # the client said its input ended (not merely: it went away)
            while True:
                if framed:
                    try:
                        kind, size = struct.unpack(">BI", await reader.readexactly(5))
                        data = await reader.readexactly(size) if size else b""
                    except asyncio.IncompleteReadError:
                        break
                    if kind == STDIN_END:
                        ended = True
                        break
                else:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        ended = True
                        break
                if want_stdin and data:
                    if box.pid is None:
                        box.pending_stdin.append(data)
                    else:
                        self._write_stdin(box, data)
            if want_stdin and ended:
                if box.pid is None:  # stdin ended before start: apply it once started
                    box.stdin_eof_pending = True
                elif box.stdin_once:
                    self._close_stdin(box)
            # Keep sending output until the container exits or the client goes away.
            if box.exit is None and not writer.is_closing():
                await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        finally:
            box.subscribers.discard(writer)
            if box.pid is None and not box.subscribers and self.boxes.get(cid) is box:
                del self.boxes[cid]  # attached, never started, client gone


def reap_strays(monitor: Monitor) -> None:
    """Reap children nobody tracks. As a subreaper we inherit every orphan below us: crun's
    `exec --detach` leaves its intermediate process (which joined the container's pid
    namespace) to us, and a pid namespace's init cannot finish exiting while a zombie of its
    namespace stays unreaped, so the container would never be seen to stop. Inits and exec'd
    processes are reaped by their pidfd handlers, never here."""
    tracked = {box.pid for box in monitor.boxes.values() if box.pid is not None}
    tracked.update(proc.pid for proc in getattr(monitor, "_execs", {}).values()
                   if proc.pid is not None)
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        return
    for pid in children:
        if pid not in tracked:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


async def serve(socket_path: str, pid_file: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    monitor = Monitor(loop, os.path.dirname(os.path.abspath(socket_path)))
    tmp = socket_path + ".new"
    if os.path.exists(tmp):
        os.unlink(tmp)
    server = await asyncio.start_unix_server(monitor.handle, tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, socket_path)  # clients see either no socket or a listening one
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGCHLD, reap_strays, monitor)
    try:
        async with server:
            await stop
    finally:
        for path in (socket_path, pid_file):
            try:
                if path:
                    os.unlink(path)
            except FileNotFoundError:
                pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="skiff-monitor",
                                     description="Parent process of skiff's containers.")
    parser.add_argument("--socket", required=True, help="Unix socket to serve skiffd on")
    parser.add_argument("--pid-file", help="write our pid here")
    args = parser.parse_args(argv)
    become_subreaper()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    asyncio.run(serve(args.socket, args.pid_file))


if __name__ == "__main__":
    main()
