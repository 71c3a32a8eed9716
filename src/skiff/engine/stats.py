"""Resource usage of a running container, read from its cgroups (v1 or v2), in the shape of
docker's stats JSON (which the docker CLI turns into CPU %, MEM USAGE / LIMIT, PIDS ...)."""

from __future__ import annotations

import os

CGROUP_ROOT = "/sys/fs/cgroup"
UNLIMITED_V1 = 1 << 62  # v1 memory.limit_in_bytes reads as a huge number when unlimited


def cgroup_paths(pid: int) -> dict[str, str]:
    """controller -> directory of `pid`'s cgroup ("" for the v2 unified hierarchy)."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                paths[""] = os.path.join(CGROUP_ROOT, path.lstrip("/")) \
                    if _pure_v2() else os.path.join(CGROUP_ROOT, "unified", path.lstrip("/"))
            for controller in controllers.split(","):
                if controller and not controller.startswith("name="):
                    paths[controller] = os.path.join(CGROUP_ROOT, controller, path.lstrip("/"))
    return paths


def _pure_v2() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _int(path: str, default: int = 0) -> int:
    text = _read(path)
    try:
        return int(text)
    except ValueError:
        return default


def _keyed(path: str) -> dict[str, int]:
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            pass
    return values


def system_cpu_ns() -> int:
    """Host CPU time of every kind, in nanoseconds (docker's system_cpu_usage)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields) * 1_000_000_000 // ticks


def sample(pid: int) -> dict:
    paths = cgroup_paths(pid)
    v2 = "memory" not in paths and "" in paths
    blkio_v1 = ""
    if v2:
        base = paths[""]
        cpu = _keyed(os.path.join(base, "cpu.stat"))
        usage_ns = cpu.get("usage_usec", 0) * 1000
        user_ns, kernel_ns = cpu.get("user_usec", 0) * 1000, cpu.get("system_usec", 0) * 1000
        memory = _keyed(os.path.join(base, "memory.stat"))
        mem_usage = _int(os.path.join(base, "memory.current"))
        limit_text = _read(os.path.join(base, "memory.max"), "max")
        mem_limit = int(limit_text) if limit_text.isdigit() else 0
        pids = _int(os.path.join(base, "pids.current"))
        pids_max = _read(os.path.join(base, "pids.max"), "max")
        io = _read(os.path.join(base, "io.stat"))
    else:
        cpuacct = paths.get("cpuacct", paths.get("cpu", ""))
        usage_ns = _int(os.path.join(cpuacct, "cpuacct.usage"))
        acct = _keyed(os.path.join(cpuacct, "cpuacct.stat"))
        ticks = os.sysconf("SC_CLK_TCK")
        user_ns = acct.get("user", 0) * 1_000_000_000 // ticks
        kernel_ns = acct.get("system", 0) * 1_000_000_000 // ticks
        mem_dir = paths.get("memory", "")
        memory = _keyed(os.path.join(mem_dir, "memory.stat"))
        mem_usage = _int(os.path.join(mem_dir, "memory.usage_in_bytes"))
        mem_limit = _int(os.path.join(mem_dir, "memory.limit_in_bytes"))
        if mem_limit >= UNLIMITED_V1:
            mem_limit = 0
        pids_dir = paths.get("pids", "")
        pids = _int(os.path.join(pids_dir, "pids.current"))
        pids_max = _read(os.path.join(pids_dir, "pids.max"), "max")
        io = ""
        blkio = paths.get("blkio", "")
        blkio_v1 = _read(os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive")) \
            if blkio else ""
    if not mem_limit:
        mem_limit = _host_memory()
    networks = network_counters(pid)
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": usage_ns, "usage_in_usermode": user_ns,
                                    "usage_in_kernelmode": kernel_ns},
                      "system_cpu_usage": system_cpu_ns(), "online_cpus": os.cpu_count() or 1,
                      "throttling_data": {"periods": 0, "throttled_periods": 0,
                                          "throttled_time": 0}},
        "memory_stats": {"usage": mem_usage, "limit": mem_limit, "stats": memory},
        "pids_stats": {"current": pids,
                       **({"limit": int(pids_max)} if pids_max.isdigit() else {})},
        "blkio_stats": {"io_service_bytes_recursive": _io_bytes(io) if v2 and io else
                        _io_bytes_v1(blkio_v1) if not v2 and blkio_v1 else None},
        "num_procs": 0,
        "storage_stats": {},
        **({"networks": networks} if networks is not None else {}),
    }


NET_DEV_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", None, None, None, None,
                  "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/PID/net/dev as docker's stats `networks`: each interface but `lo`."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, counters = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        values = counters.split()
        out[name] = {key: int(values[i]) for i, key in enumerate(NET_DEV_FIELDS)
                     if key and i < len(values)}
    return out


def network_counters(pid: int) -> dict | None:
    """The interfaces of the container's own network namespace; None when it has none of
    its own (`--network host`, as docker leaves `networks` out then)."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            return None
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return None


def _io_bytes(io_stat: str) -> list[dict]:
    entries = []
    for line in io_stat.splitlines():
        device, *fields = line.split()
        major, _, minor = device.partition(":")
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                entries.append({"major": int(major), "minor": int(minor), "op": op,
                                "value": int(values[key])})
    return entries


def _io_bytes_v1(text: str) -> list[dict]:
    """blkio.throttle.io_service_bytes_recursive: "MAJ:MIN Op bytes" lines (and a Total)."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        entries.append({"major": int(major), "minor": int(minor), "op": fields[1].lower(),
                        "value": int(fields[2])})
    return entries


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


EMPTY_CPU = {"cpu_usage": {"total_usage": 0, "usage_in_usermode": 0, "usage_in_kernelmode": 0},
             "system_cpu_usage": 0, "online_cpus": 0,
             "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
