"""skiffd's side of the monitor protocol (see server.py), and starting the monitor itself."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time

from skiff.errors import RuntimeFailure, Unavailable

STREAM_EXIT = 3
STDIN_DATA, STDIN_END = 0, 1


class MonitorClient:
    def __init__(self, exec_root: str, log_path: str | None = None):
        self.socket_path = os.path.join(exec_root, "monitor.sock")
        self.pid_file = os.path.join(exec_root, "monitor.pid")
        self.log_path = log_path or os.path.join(exec_root, "monitor.log")
        self._process: subprocess.Popen | None = None
        self._spare: asyncio.Future | None = None   # a connection ready for request_ready

    # ------------------------------------------------------------------ life
    def alive(self) -> bool:
        """Whether a monitor listens on our socket (a pid file can outlive its process, and
        a dead child of ours stays a zombie until reaped, so neither tells)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.socket_path)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def ensure_running(self, timeout: float = 10.0) -> None:
        """Start the monitor unless one already serves this exec-root. It outlives skiffd:
        its own session, and stdio to a log file."""
        if self.alive():
            return
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        if self._process is not None:
            self._process.poll()  # reap a monitor of ours that died
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "skiff.monitor.server", "--socket", self.socket_path,
                 "--pid-file", self.pid_file],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                close_fds=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path):
            if time.monotonic() > deadline:
                raise Unavailable("skiff-monitor did not start; see " + self.log_path)
            time.sleep(0.005)

    # ------------------------------------------------------------------ requests
    async def _open(self):
        try:
            return await asyncio.open_unix_connection(self.socket_path, limit=1 << 20)
        except (FileNotFoundError, ConnectionRefusedError):
            self.ensure_running()
            return await asyncio.open_unix_connection(self.socket_path, limit=1 << 20)

    async def request_ready(self, request: dict):
        """Send `request` and read the monitor's one-line reply: (reply, reader, writer),
        the connection left open for what follows (exec's stream). It goes over a spare
        connection opened after the previous such request, so that connecting and the
        monitor's accept are not on the way (~0.5 ms of exec's); one that turns out dead
        (the monitor restarted since) is replaced by a new connection once."""
        spare, self._spare = self._spare, None
        try:
            if spare is not None and spare.done() and not spare.cancelled() \
                    and spare.exception() is None:
                reader, writer = spare.result()
                reply = await self._exchange(reader, writer, request)
                if reply is not None:
                    return reply, reader, writer
            elif spare is not None:
                spare.cancel()
            reader, writer = await self._open()
            reply = await self._exchange(reader, writer, request)
            return reply or {}, reader, writer
        finally:
            self._refill()   # after the reply: the monitor accepts it while it is idle

    @staticmethod
    async def _exchange(reader, writer, request: dict) -> dict | None:
        """The reply to `request`, or None (and the connection closed) if the monitor
        closed it without one."""
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        except (ConnectionError, OSError):
            line = b""
        except BaseException:
            writer.close()
            raise
        if not line:
            writer.close()
            return None
        return json.loads(line)

    def _refill(self) -> None:
        if self._spare is None:
            self._spare = asyncio.ensure_future(self._open())
            self._spare.add_done_callback(_ignore_failure)

    async def call(self, op: str, **fields) -> dict:
        reader, writer = await self._open()
        try:
            writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise Unavailable(f"skiff-monitor closed the connection during {op}")
            return json.loads(line)
        finally:
            writer.close()

    async def start(self, cid: str, bundle: str, *, tty: bool, stdin: bool, stdin_once: bool,
                    log_path: str | None, exit_path: str, log_max_size: int | None = None,
                    log_max_files: int = 1, log_attrs: dict | None = None) -> int:
        reply = await self.call("start", id=cid, bundle=bundle, tty=tty, stdin=stdin,
                                stdin_once=stdin_once, log_path=log_path, exit_path=exit_path,
                                log_max_size=log_max_size, log_max_files=log_max_files,
                                log_attrs=log_attrs)
        if "error" in reply:
            raise RuntimeFailure(reply["error"], reply.get("exit_code", 125))
        return reply["pid"]

    async def wait(self, cid: str) -> dict | None:
        """The exit record once the container has exited; None if the monitor does not
        know the container (then exit.json is the truth)."""
        reply = await self.call("wait", id=cid)
        return None if reply.get("unknown") else reply

    async def attach(self, cid: str, *, stdin: bool, before_start: bool) -> "AttachStream | None":
        reader, writer = await self._open()
        writer.write(json.dumps({"op": "attach", "id": cid, "stdin": stdin,
                                 "before_start": before_start,
                                 "stdin_framed": True}).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline() or b"{}")
        if not reply.get("ok"):
            writer.close()
            return None
        return AttachStream(reader, writer, reply.get("tty", False), framed=True)

    async def events(self):
        """Yields one dict per container exit, for as long as the monitor runs."""
        reader, writer = await self._open()
        writer.write(b'{"op": "events"}\n')
        await writer.drain()
        await reader.readline()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                yield json.loads(line)
        finally:
            writer.close()


def _ignore_failure(future: asyncio.Future) -> None:
    """A spare connection that could not be opened is simply not used."""
    if not future.cancelled():
        future.exception()


class AttachStream:
    """Frames from the monitor: (1|2, bytes) for output, (3, exit dict) at the end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool,
                 framed: bool = False):
        self.reader = reader
        self.writer = writer
        self.tty = tty
        # Framed stdin ([kind:1][size:4 BE][data]; kind 0 data, 1 end of input) tells "the
        # client's input ended" apart from "the client went away" (detach keys): only the
        # first closes the container's stdin.
        self.framed = framed

    async def next(self) -> tuple[int, object] | None:
        try:
            head = await self.reader.readexactly(5)
            stream, size = struct.unpack(">BI", head)
            data = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if stream == STREAM_EXIT:
            return stream, json.loads(data)
        return stream, data

    async def send_stdin(self, data: bytes) -> None:
        self.writer.write(struct.pack(">BI", STDIN_DATA, len(data)) + data if self.framed
                          else data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        if self.framed:
            self.writer.write(struct.pack(">BI", STDIN_END, 0))
            return
        if self.writer.can_write_eof():
            try:
                self.writer.write_eof()
            except OSError:
                pass

    def close(self) -> None:
        self.writer.close()
