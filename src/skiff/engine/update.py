"""`docker update`: new resource limits and restart policy for a container, live if it runs.

    warnings = await UpdateService(containers).update("web", {"Memory": 64 << 20})

The request is docker's UpdateConfig (the Resources fields of a HostConfig plus
RestartPolicy). As dockerd does: a zero or absent field leaves the limit as it is; the
merged HostConfig is checked with create's rules and words (400); conflicting changes are
refused (409, "Cannot update container ID: ..."); a running container's cgroups get the
changed limits at once (runtime.update); the stored HostConfig and the bundle's config.json
get all of them, so that inspect and the next start see them; an `update` event follows.
"""

from __future__ import annotations

import asyncio
import json
import os

from skiff.errors import Conflict, InvalidArgument, RuntimeFailure, SkiffError

# docker's UpdateConfig fields that skiff changes (HostConfig.Resources names)
RESOURCE_FIELDS = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota",
                   "CpusetCpus", "CpusetMems", "Memory", "MemorySwap", "MemoryReservation",
                   "KernelMemory", "PidsLimit")
# fields of the same struct that an update may carry, unchanged or empty (docker's CLI sends
# the whole Resources struct, zeros included)
IGNORED_WHEN_EMPTY = ("CgroupParent", "BlkioWeightDevice", "BlkioDeviceReadBps",
                      "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
                      "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemoryTCP",
                      "MemorySwappiness", "OomKillDisable", "Ulimits", "CpuCount",
                      "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "CpuRealtimePeriod",
                      "CpuRealtimeRuntime", "Init")
RESOURCE_KEYS = ("memory", "cpu", "pids", "blockIO")   # what update owns in linux.resources


class CannotUpdate(SkiffError):
    """A change the container's current settings forbid (docker: 409)."""
    status = 409


def _given(body: dict, key: str) -> bool:
    """docker's "non-zero means change it" (PidsLimit: any value present)."""
    value = body.get(key)
    if key == "PidsLimit":
        return value is not None
    return value not in (None, 0, "")


def check_body(body: dict) -> None:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update request: not a JSON object")
    for key in ("CpuRealtimePeriod", "CpuRealtimeRuntime"):
        if body.get(key):
            raise InvalidArgument("Your kernel does not support CPU real-time scheduler")
    for key in IGNORED_WHEN_EMPTY:
        if key in ("CpuRealtimePeriod", "CpuRealtimeRuntime"):
            continue
        value = body.get(key)
        if value not in (None, 0, "", [], {}, False, -1):
            raise InvalidArgument(f"{key} cannot be changed by update")
    for key in RESOURCE_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if key.startswith("Cpuset"):
            if not isinstance(value, str):
                raise InvalidArgument(f"invalid value for {key}: {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid value for {key}: {value!r}")


def effective_swap(hc: dict, swap_limit: bool = True) -> int:
    """The container's memory+swap limit as docker stores it: twice the memory limit when
    only the memory limit was given."""
    swap = int(hc.get("MemorySwap") or 0)
    memory = int(hc.get("Memory") or 0)
    if swap == 0 and memory > 0 and swap_limit:
        return memory * 2
    return swap


def merge(current: dict, body: dict, swap_limit: bool = True) -> tuple[dict, set[str]]:
    """(the new HostConfig, the resource fields the update changes): docker's
    Container.UpdateContainer, as a pure function. Raises CannotUpdate (the message without
    the "Cannot update container ID: " prefix)."""
    hc = dict(current)
    changed = {k for k in RESOURCE_FIELDS if _given(body, k)}
    if "NanoCpus" in changed and int(hc.get("CpuPeriod") or 0) > 0:
        raise CannotUpdate("Conflicting options: CPU Period cannot be updated as NanoCPUs "
                           "has already been set")
    if "NanoCpus" in changed and int(hc.get("CpuQuota") or 0) > 0:
        raise CannotUpdate("Conflicting options: CPU Quota cannot be updated as NanoCPUs has "
                           "already been set")
    if int(hc.get("NanoCpus") or 0) > 0 and ("CpuPeriod" in changed or "CpuQuota" in changed):
        what = "Period" if "CpuPeriod" in changed else "Quota"
        raise CannotUpdate(f"Conflicting options: CPU {what} cannot be updated as NanoCPUs "
                           "has already been set")
    old_swap = effective_swap(hc, swap_limit)
    if old_swap:
        hc["MemorySwap"] = old_swap
    if "Memory" in changed and "MemorySwap" not in changed and old_swap > 0 and \
            body["Memory"] > old_swap:
        raise CannotUpdate("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
    for key in changed:
        hc[key] = body[key]
    policy = body.get("RestartPolicy") or {}
    if policy.get("Name"):
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise CannotUpdate("Restart policy cannot be updated because AutoRemove is enabled "
                               "for the container")
        hc["RestartPolicy"] = {"Name": policy["Name"],
                               "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
    return hc, changed


def live_resources(full: dict, changed: set[str]) -> dict:
    """From the merged container's OCI resources, those an update writes to the cgroups:
    the changed limits, with the partners the kernel reads together (memory with its swap,
    CPU quota with its period)."""
    out: dict = {}
    memory = full.get("memory") or {}
    mem: dict = {}
    if "Memory" in changed and "limit" in memory:
        mem["limit"] = memory["limit"]
    if {"Memory", "MemorySwap"} & changed and "swap" in memory:
        mem["swap"] = memory["swap"]
        if "limit" in memory:
            mem["limit"] = memory["limit"]   # v2 derives memory.swap.max from both
    if "MemoryReservation" in changed and "reservation" in memory:
        mem["reservation"] = memory["reservation"]
    if mem:
        out["memory"] = mem
    cpu = full.get("cpu") or {}
    c: dict = {}
    if "CpuShares" in changed and "shares" in cpu:
        c["shares"] = cpu["shares"]
    if {"NanoCpus", "CpuPeriod", "CpuQuota"} & changed:
        for key in ("period", "quota"):
            if key in cpu:
                c[key] = cpu[key]
    for field, key in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        if field in changed and key in cpu:
            c[key] = cpu[key]
    if c:
        out["cpu"] = c
    if "PidsLimit" in changed and "pids" in full:
        out["pids"] = full["pids"]
    if "BlkioWeight" in changed and (full.get("blockIO") or {}).get("weight"):
        out["blockIO"] = {"weight": full["blockIO"]["weight"]}
    return out


def rewrite_bundle_resources(container_dir: str, resources: dict) -> None:
    """config.json's cgroup limits replaced by `resources` (devices and the rest kept), so
    that the next start applies them."""
    path = os.path.join(container_dir, "config.json")
    with open(path) as f:
        spec = json.load(f)
    current = spec.setdefault("linux", {}).setdefault("resources", {})
    for key in RESOURCE_KEYS:
        current.pop(key, None)
    current.update({k: v for k, v in resources.items() if k in RESOURCE_KEYS})
    tmp = path + ".update"
    with open(tmp, "w") as f:
        f.write(json.dumps(spec))
    os.replace(tmp, path)


class UpdateService:
    def __init__(self, containers, facts=None):
        self.containers = containers
        self._facts = facts
        self._lock = asyncio.Lock()   # one update at a time: read, merge, write

    @property
    def facts(self):
        if self._facts is None:
            from skiff.engine.hostconfig import HostFacts
            self._facts = HostFacts()
        return self._facts

    async def update(self, ref: str, body: dict) -> list[str]:
        from skiff.engine.containers import restart_policy
        from skiff.engine.hostconfig import resources

        check_body(body)
        async with self._lock:
            record = self.containers.get(ref)
            cid = record.id
            current = record.config["HostConfig"]
            try:
                merged, changed = merge(current, body, self.facts.swap_limit)
            except CannotUpdate as exc:
                raise CannotUpdate(f"Cannot update container {cid}: {exc.message}") from None
            if body.get("RestartPolicy"):
                restart_policy(merged)   # docker's checks of the policy itself (400)
            full, warnings = resources(merged, self.facts)
            state = record.state
            if changed and state.get("Running") and not state.get("Restarting"):
                live = live_resources(full, changed)
                if live:
                    from skiff.runtime.update import update_resources
                    try:
                        await asyncio.to_thread(update_resources, state["Pid"], live)
                    except RuntimeFailure as exc:
                        raise RuntimeFailure(f"Cannot update container {cid}: {exc.message}",
                                             exc.exit_code) from None
            cdir = self.containers.container_dir(cid)
            if changed:
                await asyncio.to_thread(rewrite_bundle_resources, cdir, full)
            self.containers._set_document(record, HostConfig=merged)
            self.containers._emit(self.containers.get(cid), "update")
            return warnings
