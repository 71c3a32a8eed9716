"""A running container's processes: `top` (the host's ps, restricted to the container's
cgroup) and `pause`/`unpause` (the freezer cgroup), with docker's states and errors."""

from __future__ import annotations

import asyncio

from skiff.errors import Conflict, InvalidArgument, RuntimeFailure, SkiffError


class TopError(SkiffError):
    status = 500


def parse_ps(output: str, pids: set[int]) -> dict:
    """docker's parsing of ps output: the header's columns, the PID column found by name,
    the last column keeping its spaces; only lines of `pids`."""
    lines = output.splitlines()
    if not lines:
        raise TopError("Error running top: ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise TopError("Couldn't find PID field in ps output")
    index = titles.index("PID")
    processes = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[index])
        except (IndexError, ValueError):
            continue
        if pid in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


class ProcessService:
    def __init__(self, containers):
        self.containers = containers

    def _running(self, ref: str):
        record = self.containers.get(ref)
        if not record.state.get("Running") or not record.state.get("Pid"):
            raise Conflict(f"Container {record.id} is not running")
        return record

    async def top(self, ref: str, ps_args: str | None = None) -> dict:
        from skiff.runtime import freezer

        record = self._running(ref)
        args = (ps_args or "-ef").split()
        try:
            pids = set(freezer.pids(record.state["Pid"]))
        except (OSError, RuntimeFailure) as exc:
            raise TopError(f"Error running top: {exc}") from None
        proc = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:  # options ps does not take: the request's fault
            raise InvalidArgument(f"Error running ps: exit status {proc.returncode}: "
                                  f"{err.decode(errors='replace').strip()}")
        return parse_ps(out.decode(errors="replace"), pids)

    async def pause(self, ref: str) -> None:
        from skiff.runtime import freezer

        record = self._running(ref)
        if record.state.get("Paused"):
            raise Conflict(f"Container {record.id} is already paused")
        await asyncio.to_thread(freezer.freeze, record.state["Pid"])
        state = self.containers.records.get(record.id).state
        self.containers.records.update_state(record.id, dict(state, Status="paused",
                                                             Paused=True))
        self.containers._emit(record, "pause")

    async def unpause(self, ref: str) -> None:
        from skiff.runtime import freezer

        record = self.containers.get(ref)
        if not record.state.get("Paused"):
            raise Conflict(f"Container {record.id} is not paused")
        if not record.state.get("Running"):
            raise Conflict(f"Container {record.id} is not running")
        await asyncio.to_thread(freezer.thaw, record.state["Pid"])
        state = self.containers.records.get(record.id).state
        self.containers.records.update_state(record.id, dict(state, Status="running",
                                                             Paused=False))
        self.containers._emit(record, "unpause")
