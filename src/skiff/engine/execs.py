"""Exec instances: processes started in a running container (`docker exec`).

Records live in memory, as docker's do (an exec instance does not outlive the daemon):
`create` checks the container and fixes the process (command, env, cwd, user,
capabilities), `start` asks skiff-monitor to run it and returns an `ExecSession` streaming
its output, `inspect` answers with docker's fields. The monitor's stream is read by a task of
our own until the exit frame, whoever listens, so that the exit code is always recorded.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct

from skiff.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure

STREAM_EXIT = 3
FORGET_AFTER = 300.0  # seconds an ended exec stays inspectable (docker: until the container goes)


class ExecRecord:
    def __init__(self, exec_id: str, container_id: str, body: dict, process: dict):
        self.id = exec_id
        self.container_id = container_id
        self.body = body
        self.process = process
        self.tty = bool(body.get("Tty"))
        self.running = False
        self.started = False
        self.exit_code: int | None = None
        self.pid = 0

    def inspect(self) -> dict:
        cmd = list(self.body.get("Cmd") or [])
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:],
                              "privileged": bool(self.body.get("Privileged")),
                              "user": self.body.get("User") or ""},
            "OpenStdin": bool(self.body.get("AttachStdin")),
            "OpenStderr": bool(self.body.get("AttachStderr")),
            "OpenStdout": bool(self.body.get("AttachStdout")),
            "CanRemove": False, "ContainerID": self.container_id,
            "DetachKeys": self.body.get("DetachKeys") or "", "Pid": self.pid,
        }


def replace_or_append(env: list[str], more: list[str]) -> list[str]:
    """docker's ReplaceOrAppendEnvValues: KEY=value replaces KEY; a bare KEY removes it."""
    out = list(env)
    for item in more:
        key, eq, _ = item.partition("=")
        hit = next((i for i, e in enumerate(out) if e.partition("=")[0] == key), None)
        if not eq:
            if hit is not None:
                del out[hit]
            continue
        if hit is None:
            out.append(item)
        else:
            out[hit] = item
    return out


def held_capabilities() -> list[str]:
    """The names of the capabilities in our bounding set (what --privileged gives)."""
    from skiff.linux.caps import names_of
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return names_of(int(line.split()[1], 16))
    return []


class ExecSession:
    """A started exec: output frames through `next()` ((1|2, bytes), then None at the end),
    stdin through `send_stdin`/`close_stdin`; `close()` stops listening, not the process."""

    def __init__(self, record: ExecRecord, reader, writer, on_exit):
        self.record = record
        self.tty = record.tty
        self._reader = reader
        self._writer = writer
        self._queue: asyncio.Queue = asyncio.Queue()
        self._listening = True
        self._on_exit = on_exit
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        code = 255
        try:
            while True:
                head = await self._reader.readexactly(5)
                stream, size = struct.unpack(">BI", head)
                data = await self._reader.readexactly(size)
                if stream == STREAM_EXIT:
                    code = json.loads(data).get("exit_code")
                    break
                if self._listening:
                    self._queue.put_nowait((stream, data))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._writer.close()
            self._on_exit(self.record, 255 if code is None else code)
            self._queue.put_nowait(None)

    async def next(self):
        return await self._queue.get()

    async def send_stdin(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)
            await self._writer.drain()

    def close_stdin(self) -> None:
        if not self._writer.is_closing() and self._writer.can_write_eof():
            try:
                self._writer.write_eof()
            except OSError:
                pass

    def close(self) -> None:
        self._listening = False
        while not self._queue.empty():
            self._queue.get_nowait()


class ExecService:
    def __init__(self, containers, monitor, events=None):
        self.containers = containers
        self.monitor = monitor
        self.events = events
        self._execs: dict[str, ExecRecord] = {}
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ lookups
    def get(self, exec_id: str) -> ExecRecord:
        record = self._execs.get(exec_id)
        if record is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return record

    def ids_of(self, container_id: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == container_id]

    def _running_container(self, ref: str):
        record = self.containers.get(ref)
        state = record.state
        if not state.get("Running"):
            raise Conflict(f"Container {record.id} is not running")
        if state.get("Paused"):
            raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
        if state.get("Restarting"):
            raise Conflict(f"Container {record.id} is restarting, wait until the container is "
                           "running")
        return record

    def _emit(self, container, action: str) -> None:
        if self.events is None:
            return
        attributes = dict(container.config["Config"].get("Labels") or {})
        attributes.update(image=container.config.get("ImageRef", ""), name=container.name)
        self.events.emit("container", action, container.id, attributes)

    # ------------------------------------------------------------------ create
    def create(self, ref: str, body: dict) -> str:
        container = self._running_container(ref)
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidArgument("No exec command specified")
        config = container.config["Config"]
        tty = bool(body.get("Tty"))
        env = list(config.get("Env") or [])
        if tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        env = replace_or_append(env, list(body.get("Env") or []))
        process = {"args": [str(a) for a in cmd], "env": env}
        if body.get("WorkingDir"):
            cwd = body["WorkingDir"]
            if not cwd.startswith("/"):
                raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to "
                                      "be an absolute path")
            process["cwd"] = cwd
        if body.get("User"):
            uid, gid, groups = self._user(container, body["User"])
            process["user"] = {"uid": uid, "gid": gid, "additionalGids": groups}
        if body.get("Privileged"):
            names = held_capabilities()
            process["capabilities"] = {k: names for k in ("bounding", "effective",
                                                          "permitted")}
        exec_id = secrets.token_hex(32)
        self._execs[exec_id] = ExecRecord(exec_id, container.id, dict(body, Cmd=cmd), process)
        self._emit(container, "exec_create: " + " ".join(process["args"]))
        return exec_id

    def _user(self, container, text: str):
        from skiff.oci import spec as oci_spec
        pid = container.state.get("Pid")
        files = []
        for name in ("passwd", "group"):
            try:
                with open(f"/proc/{pid}/root/etc/{name}") as f:
                    files.append(f.read())
            except OSError:
                files.append("")
        return oci_spec.parse_user(text, files[0], files[1])

    # ------------------------------------------------------------------ start
    def check_startable(self, exec_id: str) -> ExecRecord:
        record = self.get(exec_id)
        if record.running:
            raise Conflict(f"Error: Exec command {exec_id} is already running")
        if record.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        self._running_container(record.container_id)
        return record

    async def start(self, exec_id: str, *, detach: bool = False,
                    console_size: tuple[int, int] | None = None) -> ExecSession:
        """Run the exec; RuntimeFailure (docker's wording, exit code recorded) if it cannot.
        Detached, the output is discarded and the session needs no reader."""
        record = self.check_startable(exec_id)
        container = self.containers.get(record.container_id)
        record.started = True
        process = dict(record.process)
        if record.tty and console_size and all(console_size):
            process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
        reply, reader, writer = await self.monitor.request_ready({
            "op": "exec", "id": record.container_id, "exec_id": exec_id,
            "process": process, "tty": record.tty, "detach": detach,
            "stdin": bool(record.body.get("AttachStdin")) and not detach,
        })
        if "pid" not in reply:
            writer.close()
            record.exit_code = reply.get("exit_code", 126)
            self._emit(container, "exec_die")
            raise RuntimeFailure(reply.get("error", "exec failed"), record.exit_code)
        record.running = True
        record.pid = reply["pid"]
        self._emit(container, "exec_start: " + " ".join(record.process["args"]))

        def on_exit(rec: ExecRecord, code: int) -> None:
            rec.running = False
            rec.exit_code = code
            rec.pid = 0
            try:
                self._emit(self.containers.get(rec.container_id), "exec_die")
            except NotFound:
                pass
            asyncio.get_running_loop().call_later(FORGET_AFTER, self._execs.pop, rec.id, None)

        session = ExecSession(record, reader, writer, on_exit)
        self._tasks.add(session.task)  # the loop holds tasks weakly: the exit must be read
        session.task.add_done_callback(self._tasks.discard)
        if detach:
            session.close()
            session.close_stdin()
        return session

    def detached(self, exec_id: str) -> None:
        """Its client typed the detach keys and left; the process runs on."""
        record = self.get(exec_id)
        try:
            self._emit(self.containers.get(record.container_id), "exec_detach")
        except NotFound:
            pass

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        record = self.get(exec_id)
        if not record.running:
            return
        await self.monitor.call("exec_resize", exec_id=exec_id, height=height, width=width)

    def inspect(self, exec_id: str) -> dict:
        return self.get(exec_id).inspect()
