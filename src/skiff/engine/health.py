"""Health checks (`HEALTHCHECK`, `--health-*`): a probe run in the container at an interval,
its results kept in State.Health as docker keeps them, `health_status` events on changes."""

from __future__ import annotations

import asyncio
import time

from skiff.errors import NotFound, SkiffError
from skiff.timefmt import rfc3339_nano

SECOND = 1_000_000_000
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "Retries": 3}
KEEP_LOG = 5            # docker keeps the last five probe results
MAX_OUTPUT = 4096       # and at most this much of each probe's output


def merge_healthcheck(image: dict | None, given: dict | None) -> dict | None:
    """The container's check: the image's, with what `run` gave replacing it field by field
    (a test given replaces the image's test; `--no-healthcheck` is Test ["NONE"])."""
    if not image and not given:
        return None
    merged = dict(image or {})
    for key, value in (given or {}).items():
        if value not in (None, 0, [], ""):
            merged[key] = value
    return merged


def probe_command(test: list[str] | None) -> list[str] | None:
    """The command to run, or None when the check is off."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)  # docker takes a bare list as CMD


def settings(check: dict) -> dict:
    return {key: int(check.get(key) or default) for key, default in DEFAULTS.items()}


def next_health(health: dict, exit_code: int, *, retries: int, in_start_period: bool) -> dict:
    """Docker's state machine for one probe result (pure)."""
    status = health.get("Status", "starting")
    streak = health.get("FailingStreak", 0)
    if exit_code == 0:
        return {"Status": "healthy", "FailingStreak": 0}
    if in_start_period and status == "starting":
        return {"Status": "starting", "FailingStreak": streak}  # failures do not count yet
    streak += 1
    if streak >= retries:
        status = "unhealthy"
    return {"Status": status, "FailingStreak": streak}


class HealthService:
    def __init__(self, containers, execs, events):
        self.containers = containers
        self.execs = execs
        self.events = events
        self._tasks: dict[str, asyncio.Task] = {}

    # hooks the container service calls -------------------------------------------------------
    def started(self, record) -> None:
        check = record.config["Config"].get("Healthcheck")
        if probe_command((check or {}).get("Test")) is None:
            return
        self.stopped(record.id)
        self._set(record.id, {"Status": "starting", "FailingStreak": 0, "Log": []})
        self._tasks[record.id] = asyncio.ensure_future(self._run(record.id, check))

    def stopped(self, cid: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()

    # the loop --------------------------------------------------------------------------------
    def _set(self, cid: str, health: dict) -> None:
        try:
            record = self.containers.records.get(cid)
        except NotFound:
            return
        self.containers.records.update_state(cid, dict(record.state, Health=health))

    async def _run(self, cid: str, check: dict) -> None:
        conf = settings(check)
        command = probe_command(check.get("Test"))
        started = time.monotonic()
        while True:
            await asyncio.sleep(conf["Interval"] / SECOND)
            try:
                record = self.containers.records.get(cid)
            except NotFound:
                return
            if not record.state.get("Running"):
                return
            began = rfc3339_nano()
            code, output = await self._probe(cid, command, conf["Timeout"] / SECOND)
            health = dict(record.state.get("Health") or {"Status": "starting"})
            in_start = time.monotonic() - started < conf["StartPeriod"] / SECOND
            update = next_health(health, code, retries=conf["Retries"],
                                 in_start_period=in_start)
            log = list(health.get("Log") or [])[-(KEEP_LOG - 1):]
            log.append({"Start": began, "End": rfc3339_nano(), "ExitCode": code,
                        "Output": output})
            new = dict(update, Log=log)
            try:
                current = self.containers.records.get(cid)
            except NotFound:
                return
            if not current.state.get("Running"):
                return
            self._set(cid, new)
            if update["Status"] != health.get("Status"):
                self.containers._emit(current, "health_status: " + update["Status"])

    async def _probe(self, cid: str, command: list[str], timeout: float) -> tuple[int, str]:
        try:
            exec_id = self.execs.create(cid, {"Cmd": command, "AttachStdout": True,
                                              "AttachStderr": True})
            session = await self.execs.start(exec_id)
        except SkiffError as exc:
            return getattr(exc, "exit_code", 126) or 126, exc.message
        output = b""

        async def collect():
            nonlocal output
            while True:
                item = await session.next()
                if item is None:
                    return
                if len(output) < MAX_OUTPUT:
                    output += item[1][:MAX_OUTPUT - len(output)]

        try:
            await asyncio.wait_for(collect(), timeout)
        except asyncio.TimeoutError:
            session.close()
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        record = self.execs.get(exec_id)
        return record.exit_code if record.exit_code is not None else 255, \
            output.decode("utf-8", "replace")
