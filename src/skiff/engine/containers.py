"""Containers: create, start, wait, attach, kill, remove; their lifecycle states.

The state of a container lives in the `containers` table (one transaction per change); the
running process belongs to skiff-monitor, which tells us when it exits.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass

from skiff.engine import bundle, names, userns
from skiff.engine.health import merge_healthcheck
from skiff.engine.logs import read_log, record_attributes
from skiff.engine.mounts import oci_mounts
from skiff.errors import (Conflict, InvalidArgument, NotFound, NotModified, RuntimeFailure,
                          Unsupported)
from skiff.monitor.client import MonitorClient
from skiff.timefmt import parse_rfc3339, rfc3339_nano
from skiff.oci import spec as oci_spec

ZERO_TIME = "0001-01-01T00:00:00Z"
SIGNALS = {name[3:]: int(value) for name, value in signal.Signals.__members__.items()
           if name.startswith("SIG") and not name.startswith("SIG_")}


def parse_signal(text: str | int | None, default: int = signal.SIGKILL) -> int:
    if text in (None, ""):
        return default
    if isinstance(text, int) or str(text).isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    else:
        name = str(text).upper()
        name = name[3:] if name.startswith("SIG") else name
        if name in SIGNALS:
            return SIGNALS[name]
    raise InvalidArgument(f"Invalid signal: {text}")


RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_RESTART_DELAY = 0.1   # docker's back-off: 100 ms, doubled each time, at most a minute,
MAX_RESTART_DELAY = 60.0    # back to the start once a container has run for 10 s
RAN_LONG_ENOUGH = 10.0


def restart_policy(host_config: dict) -> dict:
    policy = dict(host_config.get("RestartPolicy") or {})
    name = policy.get("Name") or "no"
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    retries = policy.get("MaximumRetryCount") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidArgument(f"invalid restart policy: maximum retry count can only be used "
                              f"with 'on-failure'")
    return {"Name": name, "MaximumRetryCount": retries}


def should_restart(policy: dict, exit_code: int, manually_stopped: bool,
                   restart_count: int) -> bool:
    """Docker's rules, as a pure function of what we know at an exit."""
    name = policy["Name"]
    if manually_stopped or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    retries = policy.get("MaximumRetryCount") or 0
    return exit_code != 0 and (retries == 0 or restart_count < retries)


def next_delay(previous: float, ran_for: float) -> float:
    if ran_for >= RAN_LONG_ENOUGH or previous <= 0:
        return FIRST_RESTART_DELAY
    return min(previous * 2, MAX_RESTART_DELAY)


LOG_DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = ("max-size", "max-file", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag")


def log_config(host_config: dict, default_driver: str = "json-file",
               default_opts: dict | None = None) -> dict:
    """The container's LogConfig, the daemon's defaults filled in, checked as docker does."""
    from skiff.monitor.logfile import parse_size

    given = host_config.get("LogConfig") or {}
    driver = given.get("Type") or default_driver
    opts = dict(given.get("Config") or ({} if given.get("Type") else default_opts or {}))
    if driver not in LOG_DRIVERS:
        raise InvalidArgument(f'failed to create task for container: logger: no log driver '
                              f'named "{driver}" is registered')
    if driver == "json-file":
        for key in opts:
            if key not in JSON_FILE_OPTS:
                raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
        if "max-size" in opts:
            try:
                parse_size(opts["max-size"])
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
        if "max-file" in opts:
            if not str(opts["max-file"]).isdigit() or int(opts["max-file"]) < 1:
                raise InvalidArgument("max-file cannot be less than 1")
            if "max-size" not in opts and int(opts["max-file"]) > 1:
                raise InvalidArgument("max-file cannot be set without max-size")
    elif opts:
        raise InvalidArgument(f"unknown log opt '{next(iter(opts))}' for {driver} log driver")
    return {"Type": driver, "Config": opts}


def _prune_filters_match(record, filters: dict[str, list[str]], now: float) -> bool:
    labels = record.config["Config"].get("Labels") or {}
    for value in filters.get("until", []):
        try:
            limit = float(value) if value.replace(".", "").isdigit() else parse_rfc3339(value)
        except ValueError:
            raise InvalidArgument(f"invalid filter 'until={value}'") from None
        if parse_rfc3339(record.created) >= limit:
            return False
    for key, negate in (("label", False), ("label!", True)):
        for value in filters.get(key, []):
            k, eq, v = value.partition("=")
            present = k in labels and (not eq or labels[k] == v)
            if present == negate:
                return False
    return True


def new_state(status: str = "created") -> dict:
    return {"Status": status, "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Waiters:
    exited: list[asyncio.Future]
    removed: list[asyncio.Future]


class ContainerService:
    volume_use = None   # skiff.engine.volume_use.VolumeUse, set by the Engine (volumes)

    def __init__(self, *, root: str, records, images, snapshots, monitor: MonitorClient,
                 events=None, cgroup_parent: str = "skiff", log_driver: str = "json-file",
                 log_opts: dict | None = None,
                 host_resolv: str = "/etc/resolv.conf"):
        self.dir = os.path.join(root, "containers")
        os.makedirs(self.dir, mode=0o710, exist_ok=True)
        self.records = records
        self.images = images
        self.snapshots = snapshots
        self.monitor = monitor
        self.host_resolv = host_resolv
        self.cgroup_parent = cgroup_parent.strip("/")
        self.log_driver = log_driver
        self.log_opts = dict(log_opts or {})
        if events is None:
            from skiff.engine.events import EventBus

            events = EventBus()
        self.events = events
        self._waiters: dict[str, Waiters] = {}
        self.shutting_down = False      # the daemon stops its containers (live-restore off)
        self.started_hooks: list = []   # fn(record) after each start (health checks)
        self.exited_hooks: list = []    # fn(container id) after each exit or removal
        self._restarts: dict[str, asyncio.Task] = {}   # pending restarts by container id
        self._locks: dict[str, asyncio.Lock] = {}
        self._delays: dict[str, float] = {}            # last restart delay by container id
        self._events_task: asyncio.Task | None = None
        self.networks = None   # skiff.engine.networks.NetworkService, set by the Engine
        self.runtimes = None   # skiff.engine.runtimes.RuntimeTable, set by the Engine
        self.userns = None     # skiff.engine.userns.UsernsRemap (userns-remap), by the Engine

    # ------------------------------------------------------------------ helpers
    def container_dir(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def get(self, ref: str):
        return self.records.find(ref)

    def _waiters_of(self, cid: str) -> Waiters:
        return self._waiters.setdefault(cid, Waiters([], []))

    def _emit(self, record, action: str, **extra) -> None:
        attributes = dict(record.config["Config"].get("Labels") or {})
        attributes.update(image=record.config.get("ImageRef", ""), name=record.name, **extra)
        self.events.emit("container", action, record.id, attributes)

    # ------------------------------------------------------------------ create
    def create(self, body: dict, name: str | None = None):
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidArgument("config cannot be empty in order to create a container")
        image = self.images.get(image_ref)
        image_config = (image.config or {}).get("config") or {}
        args, env, cwd = bundle.container_process(image_config, body)
        if name:
            name = names.validate_name(name)
        else:
            name = names.random_name(self._name_taken)
        cid = secrets.token_hex(32)
        host_config = dict(body.get("HostConfig") or {})
        policy = restart_policy(host_config)
        host_config["LogConfig"] = log_config(host_config, self.log_driver, self.log_opts)
        if host_config.get("AutoRemove") and policy["Name"] != "no":
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        if self.runtimes is not None:   # --runtime (engine/runtimes.py)
            host_config["Runtime"] = self.runtimes.choose(host_config)
        userns.check_mode(host_config)   # --userns
        tty = bool(body.get("Tty"))
        hostname = body.get("Hostname") or (   # host's, or the shared one's (networking)
            self.networks.default_hostname(host_config, self.get)
            if self.networks is not None else None) or cid[:12]
        if tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        env = [f"HOSTNAME={hostname}"] + [e for e in env if not e.startswith("HOSTNAME=")]
        user_text = body.get("User") or image_config.get("User") or ""
        chain_ids = self.images.chain_ids(image)
        cdir = self.container_dir(cid)
        os.makedirs(cdir, mode=0o710)
        new_volumes: list[str] = []   # volumes made for this container (volumes)
        try:
            if self.runtimes is not None:   # which runtime skiff-monitor drives for it
                self.runtimes.write(cdir, host_config["Runtime"])
            mounts = self.snapshots.prepare(cid, chain_ids)
            rootfs_mounts = [m.to_dict() for m in mounts]
            user = self._resolve_user(user_text, rootfs_mounts)
            mount_points = self._mount_points(host_config, body, image_config, new_volumes)
            warnings: list[str] = []
            spec = bundle.build_spec(
                args=args, env=env, cwd=cwd, user=user, hostname=hostname, tty=tty,
                open_stdin=bool(body.get("OpenStdin")), rootfs_mounts=rootfs_mounts,
                extra_mounts=bundle.etc_mounts(cdir) + oci_mounts(mount_points),
                cgroups_path=f"{self.cgroup_parent}/{cid}",
                host_config=host_config, lookup=self.get, warnings=warnings)
            if self.userns is not None:   # userns-remap: a user namespace, the daemon's maps
                self.userns.apply(spec, host_config, host_config.get("Runtime") or "skiff")
            files = bundle.etc_files(hostname, self._host_resolv())
            if self.networks is not None:   # endpoints, the netns path, resolv.conf, hosts
                self.networks.prepare(cid, name, body, host_config, spec, self.get)
                files = self.networks.etc_files(files, host_config, body)
            bundle.write_bundle(cdir, spec, files)
            created = rfc3339_nano()
            config = {
                "Hostname": hostname, "Domainname": body.get("Domainname", ""),
                "User": user_text, "AttachStdin": bool(body.get("AttachStdin")),
                "AttachStdout": bool(body.get("AttachStdout", True)),
                "AttachStderr": bool(body.get("AttachStderr", True)),
                "Tty": tty, "OpenStdin": bool(body.get("OpenStdin")),
                "StdinOnce": bool(body.get("StdinOnce")), "Env": env,
                "Cmd": body.get("Cmd") if body.get("Cmd") else image_config.get("Cmd"),
                "Image": image_ref, "WorkingDir": body.get("WorkingDir") or
                image_config.get("WorkingDir", ""),
                "Entrypoint": body.get("Entrypoint") if body.get("Entrypoint") is not None
                else image_config.get("Entrypoint"),
                "Labels": {**(image_config.get("Labels") or {}), **(body.get("Labels") or {})},
                "Healthcheck": merge_healthcheck(image_config.get("Healthcheck"),
                                                 body.get("Healthcheck")),
                "StopSignal": body.get("StopSignal") or image_config.get("StopSignal"),
                "StopTimeout": body.get("StopTimeout"),
                "ExposedPorts": {**(image_config.get("ExposedPorts") or {}),
                                 **(body.get("ExposedPorts") or {})} or None,
            }
            document = {"Config": config, "HostConfig": host_config, "Path": args[0],
                        "Args": args[1:], "ImageRef": image_ref, "RestartCount": 0,
                        "Warnings": warnings, "MountPoints": mount_points}
            record = self.records.insert(cid, name, image.id, created, document, new_state())
        except BaseException:
            if self.networks is not None:
                self.networks.forget(cid)
            self._discard(cid)
            if self.volume_use is not None:
                self.volume_use.discard(new_volumes)
            raise
        self._emit(record, "create")
        return record

    def _mount_points(self, host_config: dict, body: dict, image_config: dict,
                      new_volumes: list[str]) -> list[dict]:
        if self.volume_use is None:
            return []
        return self.volume_use.prepare(host_config, body.get("Volumes"),
                                       image_config.get("Volumes"), self.get, new_volumes)

    def _name_taken(self, name: str) -> bool:
        try:
            self.records.find(name)
            return True
        except NotFound:
            return False

    def _host_resolv(self) -> str:
        try:
            with open(self.host_resolv) as f:
                return f.read()
        except OSError:
            return ""

    def _resolve_user(self, user_text: str, rootfs_mounts: list[dict]):
        if not user_text:
            return (0, 0, [])
        return oci_spec.parse_user(user_text, self._image_file(rootfs_mounts, "etc/passwd"),
                                   self._image_file(rootfs_mounts, "etc/group"))

    @staticmethod
    def _image_file(rootfs_mounts: list[dict], relpath: str) -> str:
        """A file of the image, looked up through the overlay's lower dirs, top first."""
        for mount in rootfs_mounts:
            for option in mount.get("options", []):
                if option.startswith("lowerdir="):
                    for lower in option[len("lowerdir="):].split(":"):
                        try:
                            with open(os.path.join(lower, relpath)) as f:
                                return f.read()
                        except OSError:
                            continue
        return ""

    def _discard(self, cid: str) -> None:
        try:
            self.snapshots.remove(cid)
        except Exception:
            pass
        shutil.rmtree(self.container_dir(cid), ignore_errors=True)

    # ------------------------------------------------------------------ start
    async def start(self, ref: str):
        """A user's start: also clears a manual stop, so restart policies apply again."""
        record = self.records.find(ref)
        if record.state.get("Running"):
            raise NotModified("container already started")
        await self._cancel_restart(record.id)
        record = self._set_document(self.records.get(record.id), HasBeenManuallyStopped=False,
                                    RestartCount=0)
        return await self._start(record)

    def lock(self, cid: str) -> asyncio.Lock:
        """What must not overlap on one container: starting it (two starts at once would
        mount its rootfs twice), and cp's use of a stopped container's files (it mounts the
        same rootfs meanwhile)."""
        lock = self._locks.get(cid)
        if lock is None:
            lock = self._locks[cid] = asyncio.Lock()
        return lock

    async def _start(self, record):
        async with self.lock(record.id):
            current = self.records.get(record.id)
            if current.state.get("Running"):
                raise NotModified("container already started")
            return await self._start_unlocked(current)

    async def _start_unlocked(self, record):
        cid = record.id
        state = record.state
        cdir = self.container_dir(cid)
        config = record.config["Config"]
        exit_path = os.path.join(cdir, "exit.json")
        try:
            os.unlink(exit_path)
        except FileNotFoundError:
            pass
        try:
            if self.networks is not None:   # its namespace, veths, addresses, ports, DNS
                await self.networks.setup(record)
            logging = record.config["HostConfig"].get("LogConfig") or {"Type": "json-file"}
            opts = logging.get("Config") or {}
            from skiff.monitor.logfile import parse_size

            if self.volume_use is not None:   # host mounts, copy-up, mount events
                await asyncio.to_thread(self.volume_use.started, cid,
                                        record.config.get("MountPoints") or [], cdir)
            pid = await self.monitor.start(
                cid, cdir, tty=config["Tty"], stdin=config["OpenStdin"],
                stdin_once=config["StdinOnce"],
                log_path=self.log_path(cid) if logging["Type"] == "json-file" else None,
                exit_path=exit_path,
                log_max_size=parse_size(opts["max-size"]) if "max-size" in opts else None,
                log_max_files=int(opts.get("max-file", 1)),
                log_attrs=record_attributes(opts, config.get("Labels"), config.get("Env")))
        except RuntimeFailure as exc:
            if self.volume_use is not None:
                self.volume_use.stopped(cid)
            status = "created" if state["Status"] == "created" else "exited"
            self.records.update_state(cid, dict(state, Status=status, Restarting=False,
                                                Error=exc.message, ExitCode=exc.exit_code))
            if self.networks is not None:
                await self.networks.release(cid)
            if record.config["HostConfig"].get("AutoRemove"):
                await self.remove(cid, force=True)
            raise
        state = {k: v for k, v in state.items() if k != "Health"}  # a new run, a new health
        self.records.update_state(cid, dict(
            state, Status="running", Running=True, Restarting=False, Pid=pid, ExitCode=0,
            Error="", StartedAt=rfc3339_nano(), FinishedAt=ZERO_TIME))
        self._emit(record, "start")
        started = self.records.get(cid)
        for hook in self.started_hooks:
            hook(started)
        return record

    def _set_document(self, record, **fields):
        """Change top-level fields of the container's stored document."""
        document = dict(record.config, **fields)
        self.records.update_config(record.id, document)
        return self.records.get(record.id)

    # ------------------------------------------------------------------ exits
    async def watch_exits(self) -> None:
        """Follow the monitor's exit events for as long as skiffd runs; first catch up on
        exits that happened while we were away, then bring back what restart policies say."""
        restored = False
        while True:
            events = self.monitor.events()
            try:
                first = asyncio.ensure_future(events.__anext__())
                await asyncio.sleep(0)
                await self.reconcile()
                if not restored:
                    restored = True
                    for record in self.records.list():  # e.g. health checks, after a restart
                        if record.state.get("Running"):
                            for hook in self.started_hooks:
                                hook(record)
                    await self.restore_policies()
                event = await first
                while True:
                    await self._on_exit(event)
                    event = await events.__anext__()
            except StopAsyncIteration:
                pass
            except (ConnectionError, OSError):
                pass
            await asyncio.sleep(0.2)  # the monitor went away: start it and follow again

    async def reconcile(self) -> None:
        listing = await self.monitor.call("list")
        alive = {c["id"] for c in listing.get("containers", []) if c.get("running")}
        for record in self.records.list():
            if record.state.get("Running") and record.id not in alive:
                exit_record = self._read_exit_file(record.id)
                if exit_record is None:
                    # Its monitor died (a crash, or a reboot): whatever of the container may
                    # still run has nobody holding its stdio; end it, free its cgroups.
                    exit_record = {"id": record.id, "exit_code": 255,
                                   "finished_at": rfc3339_nano()}
                    await asyncio.to_thread(self._clean_lost, record.id)
                await self._on_exit(exit_record)

    async def restore_policies(self) -> None:
        """At daemon start: `always` containers run again even after a manual stop, as
        docker does; `unless-stopped` ones unless they were stopped by hand."""
        for record in self.records.list():
            if record.state.get("Running") or record.state.get("Restarting"):
                continue
            if record.state.get("Status") == "created":
                continue
            name = restart_policy(record.config["HostConfig"])["Name"]
            wanted = name == "always" or (
                name == "unless-stopped" and not record.config.get("HasBeenManuallyStopped"))
            if wanted:
                try:
                    await self._start(self._set_document(record, HasBeenManuallyStopped=False))
                except RuntimeFailure:
                    pass

    def _clean_lost(self, cid: str) -> None:
        from skiff.monitor import oci_runtime

        try:
            oci_runtime.cleanup(self.container_dir(cid), cid)   # whichever runtime made it
        except Exception as exc:  # never let one container's debris stop the daemon
            import logging

            logging.getLogger("skiffd").warning("cleaning up %s: %s", cid, exc)

    def _read_exit_file(self, cid: str) -> dict | None:
        import json

        try:
            with open(os.path.join(self.container_dir(cid), "exit.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    async def _on_exit(self, event: dict) -> None:
        cid = event.get("id")
        try:
            record = self.records.get(cid)
        except NotFound:
            return
        code = event.get("exit_code", 255)
        finished = event.get("finished_at") or rfc3339_nano()
        restart = False
        if record.state.get("Running"):
            if self.networks is not None:   # veths, addresses, ports go with the process,
                await self.networks.release(cid)   # before anyone sees it exited
            policy = restart_policy(record.config["HostConfig"])
            restart = not self.shutting_down and should_restart(
                policy, code, record.config.get("HasBeenManuallyStopped", False),
                record.config.get("RestartCount", 0))
            self.records.update_state(cid, dict(
                record.state, Status="restarting" if restart else "exited", Running=False,
                Restarting=restart, Paused=False, Pid=0, ExitCode=code,
                OOMKilled=event.get("oom_killed", False), FinishedAt=finished))
            if event.get("oom_killed"):
                self._emit(record, "oom")
            self._emit(record, "die", exitCode=code)
        for hook in self.exited_hooks:
            hook(cid)
        waiters = self._waiters_of(cid)
        for fut in waiters.exited:
            if not fut.done():
                fut.set_result(code)
        waiters.exited.clear()
        if record.config["HostConfig"].get("AutoRemove"):
            await self.remove(cid, force=True)
        elif restart:
            try:
                ran_for = parse_rfc3339(finished) - parse_rfc3339(record.state["StartedAt"])
            except (KeyError, ValueError):
                ran_for = 0.0
            delay = next_delay(self._delays.get(cid, 0.0), ran_for)
            self._delays[cid] = delay
            self._restarts[cid] = asyncio.ensure_future(self._restart_later(cid, delay))

    async def _restart_later(self, cid: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            try:
                record = self.records.get(cid)
            except NotFound:
                return
            if not record.state.get("Restarting"):
                return  # stopped or started by hand meanwhile
            record = self._set_document(record,
                                        RestartCount=record.config.get("RestartCount", 0) + 1)
            starting = asyncio.ensure_future(self._start(record))
            try:
                await asyncio.shield(starting)
            except asyncio.CancelledError:
                # Stopped by hand while we were starting it: let the start finish, then
                # undo it, so that no container runs that the records call stopped.
                try:
                    await starting
                except RuntimeFailure:
                    return
                loop = asyncio.get_running_loop()
                exited = loop.create_future()
                self._waiters_of(cid).exited.append(exited)
                self._set_document(self.records.get(cid), HasBeenManuallyStopped=True)
                await self.monitor.call("kill", id=cid, signal=signal.SIGKILL)
                await exited
            except NotModified:
                pass  # started by hand meanwhile
            except RuntimeFailure as exc:
                # A start that fails is an exit as far as the policy goes: try again later.
                self.records.update_state(cid, dict(self.records.get(cid).state, Running=True))
                await self._on_exit({"id": cid, "exit_code": exc.exit_code,
                                     "finished_at": rfc3339_nano()})
        finally:
            if self._restarts.get(cid) is asyncio.current_task():
                del self._restarts[cid]

    async def _cancel_restart(self, cid: str) -> bool:
        """Drop a pending restart (waiting out one that is half-way through starting);
        True if the container was waiting for one."""
        task = self._restarts.pop(cid, None)
        self._delays.pop(cid, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            record = self.records.get(cid)
        except NotFound:
            return task is not None
        if record.state.get("Restarting"):
            self.records.update_state(cid, dict(record.state, Status="exited", Restarting=False))
            return True
        return task is not None

    # ------------------------------------------------------------------ wait
    async def wait(self, ref: str, condition: str = "not-running") -> dict:
        record = self.records.find(ref)
        cid = record.id
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        if condition == "not-running" and not record.state.get("Running"):
            return {"StatusCode": record.state.get("ExitCode", 0), "Error": None}
        waiters = self._waiters_of(cid)
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        waiters.exited.append(exited)
        removed = None
        if condition == "removed":
            removed = loop.create_future()
            waiters.removed.append(removed)
        code = await exited
        if removed is not None:
            await removed
        return {"StatusCode": code, "Error": None}

    # ------------------------------------------------------------------ signals
    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        record = self.records.find(ref)
        number = parse_signal(sig)
        if not record.state.get("Running"):
            if await self._cancel_restart(record.id):
                self._set_document(self.records.get(record.id), HasBeenManuallyStopped=True)
                return
            raise Conflict(f"Cannot kill container: {ref}: Container {record.id} is not running")
        if number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            # As docker: a container killed by hand is not brought back by its policy.
            self._set_document(record, HasBeenManuallyStopped=True)
        self._emit(record, "kill", signal=number)
        await self.monitor.call("kill", id=record.id, signal=number)

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        record = self.records.find(ref)
        if not record.state.get("Running"):
            if await self._cancel_restart(record.id):
                self._set_document(self.records.get(record.id), HasBeenManuallyStopped=True)
                return
            raise NotModified("container already stopped")
        record = self._set_document(record, HasBeenManuallyStopped=True)
        await self._stop_process(record, timeout, sig)

    async def stop_for_shutdown(self, timeout: int) -> None:
        """The daemon stops and keeps no container running (`live-restore` off): each running
        container is stopped as `stop` would (its stop signal; its StopTimeout, else
        `timeout`), not counted as stopped by hand, and not restarted now: restart policies
        bring them back when the daemon starts again, as with docker."""
        self.shutting_down = True
        running = [r for r in self.records.list() if r.state.get("Running")]
        await asyncio.gather(*(self._stop_process(r, r.config["Config"].get("StopTimeout")
                                                  or timeout, None) for r in running),
                             return_exceptions=True)

    async def _stop_process(self, record, timeout: int | None, sig: str | None) -> None:
        config = record.config["Config"]
        number = parse_signal(sig or config.get("StopSignal"), default=signal.SIGTERM)
        if timeout is None:
            timeout = config.get("StopTimeout") or 10
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        self._waiters_of(record.id).exited.append(exited)
        self._emit(record, "kill", signal=number)
        await self.monitor.call("kill", id=record.id, signal=number)
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout if timeout >= 0 else None)
        except asyncio.TimeoutError:
            self._emit(record, "kill", signal=int(signal.SIGKILL))
            await self.monitor.call("kill", id=record.id, signal=signal.SIGKILL)
            await exited
        self._emit(record, "stop")

    async def resize(self, ref: str, height: int, width: int) -> None:
        record = self.records.find(ref)
        if not record.state.get("Running"):
            raise Conflict(f"Container {record.id} is not running")
        await self.monitor.call("resize", id=record.id, height=height, width=width)

    # ------------------------------------------------------------------ remove
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """`volumes` (`rm -v`; always for `--rm` containers): remove its anonymous volumes
        that no other container uses."""
        record = self.records.find(ref)
        cid = record.id
        if await self._cancel_restart(cid):
            record = self.records.get(cid)
        if record.state.get("Running"):
            if not force:
                raise Conflict(f"You cannot remove a running container {cid}. Stop the "
                               "container before attempting removal or force remove")
            loop = asyncio.get_running_loop()
            exited = loop.create_future()
            self._waiters_of(cid).exited.append(exited)
            await self.monitor.call("kill", id=cid, signal=signal.SIGKILL)
            await exited
            if record.config["HostConfig"].get("AutoRemove"):
                # Removal is under way through the exit handler.
                fut = loop.create_future()
                self._waiters_of(cid).removed.append(fut)
                if self._exists(cid):
                    await fut
                return
        if not self._exists(cid):
            return
        self.records.delete(cid)
        if self.networks is not None:
            self.networks.forget(cid)
        self._discard(cid)
        self._emit(record, "destroy")
        if self.volume_use is not None:
            self.volume_use.removed(record, volumes or bool(
                record.config["HostConfig"].get("AutoRemove")))
        self._locks.pop(cid, None)
        waiters = self._waiters.pop(cid, None)
        if waiters:
            for fut in waiters.exited + waiters.removed:
                if not fut.done():
                    fut.set_result(record.state.get("ExitCode", 0))

    def _exists(self, cid: str) -> bool:
        try:
            self.records.get(cid)
            return True
        except NotFound:
            return False

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None):
        record = self.records.find(ref)
        if record.state.get("Running"):
            await self.stop(record.id, timeout, sig)
        await self.start(record.id)
        self._emit(self.records.get(record.id), "restart")

    def rename(self, ref: str, new_name: str) -> None:
        record = self.records.find(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        name = names.validate_name(new_name)
        if name == record.name:
            raise InvalidArgument(f"Renaming a container with the same name as its current "
                                  f"name")
        self.records.rename(record.id, name)
        self._emit(self.records.get(record.id), "rename", oldName="/" + record.name)

    async def prune(self, filters: dict[str, list[str]]) -> dict:
        """Remove every stopped container (that the `until` and `label` filters keep)."""
        removed, now = [], time.time()
        for record in self.records.list():
            if record.state.get("Running") or record.state.get("Restarting"):
                continue
            if not _prune_filters_match(record, filters, now):
                continue
            await self.remove(record.id)
            removed.append(record.id)
        return {"ContainersDeleted": removed or None, "SpaceReclaimed": 0}

    # ------------------------------------------------------------------ attach and logs
    async def attach(self, ref: str, *, stdin: bool):
        record = self.records.find(ref)
        self._emit(record, "attach")
        stream = await self.monitor.attach(record.id, stdin=stdin,
                                           before_start=not record.state.get("Running"))
        return record, stream

    def logs(self, ref: str, **options):
        record = self.records.find(ref)
        driver = (record.config["HostConfig"].get("LogConfig") or {}).get("Type", "json-file")
        if driver != "json-file":
            raise Unsupported("configured logging driver does not support reading")
        path = os.path.join(self.container_dir(record.id), f"{record.id}-json.log")

        def running() -> bool:
            try:
                return bool(self.records.get(record.id).state.get("Running"))
            except NotFound:
                return False

        return record, read_log(path, still_running=running, **options)

    def sizes(self, record) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): what the container wrote, and that plus its image."""
        written = self.snapshots.active_usage(record.id).size
        try:
            image_size = self.images.get(record.image_id).size if record.image_id else 0
        except NotFound:
            image_size = 0
        return written, written + image_size

    def log_path(self, cid: str) -> str:
        return os.path.join(self.container_dir(cid), f"{cid}-json.log")
