#!/usr/bin/env python3
"""Daemon benchmarks: API requests per second, logs throughput, memory at rest and with many
containers, beside dockerd (+ containerd and its shims) when installed.

    python3 bench/daemon.py [--containers 100] [--engines skiff,docker]

Memory is PSS (proportional set size, from /proc/PID/smaps_rollup) summed over the engine's
own processes: skiffd + skiff-monitor for skiff; dockerd + containerd + every
containerd-shim for docker (docker's per-container cost lives in its shims).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Docker, Skiff, installed, sh, write_results  # noqa: E402


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def engine_pids(engine) -> list[int]:
    if isinstance(engine, Skiff):
        pids = [engine.proc.pid]
        monitor = os.path.join(engine.dir, "run", "monitor.pid")
        if os.path.exists(monitor):
            pids.append(int(open(monitor).read()))
        return pids
    pids = [engine.dockerd.pid, engine.containerd.pid]
    # containerd-shim-runc-v2 processes re-parent to init; find them by their parent-less
    # command line naming our containerd's address.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmdline and b"containerd-shim" in cmdline[0] and \
                    engine.containerd_sock.encode() in b" ".join(cmdline):
                pids.append(int(entry))
    return pids


def memory_mb(engine) -> float:
    return round(sum(pss_kb(p) for p in engine_pids(engine)) / 1024, 1)


def requests_per_second(sock: str, path: str, seconds: float = 3.0, clients: int = 4) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i):
        conn = UnixHTTPConnection(sock)
        while time.monotonic() < stop:
            conn.request("GET", path)
            conn.getresponse().read()
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(counts) / seconds, 1)


def logs_throughput(engine, megabytes: int) -> float:
    name = f"bench-logs-{os.getpid()}"
    sh(engine.cli + ["run", "--name", name, "busybox", "sh", "-c",
                     f"yes 0123456789012345678901234567890123456789 | head -c {megabytes << 20}"],
       env=getattr(engine, "env", None))
    try:
        start = time.perf_counter()
        proc = subprocess.run(engine.cli + ["logs", name], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=True)
        took = time.perf_counter() - start
        assert len(proc.stdout) >= megabytes * (1 << 20) * 0.99, len(proc.stdout)
        return round(megabytes / took, 1)
    finally:
        subprocess.run(engine.cli + ["rm", "-f", name], stdout=subprocess.DEVNULL)


def measure(engine, count: int, log_mb: int) -> dict:
    results = {"memory_at_rest_mb": memory_mb(engine)}
    names = [f"bench-{os.getpid()}-{i}" for i in range(count)]
    extra = ["--network", "none"] if not isinstance(engine, Skiff) else []
    for name in names:
        sh(engine.cli + ["run", "-d", "--name", name, *extra, "busybox", "sleep", "3600"])
    time.sleep(2)
    results[f"memory_with_{count}_mb"] = memory_mb(engine)
    results["memory_per_container_kb"] = round(
        (results[f"memory_with_{count}_mb"] - results["memory_at_rest_mb"]) * 1024 / count, 1)
    results[f"containers_json_rps_{count}"] = requests_per_second(
        engine.sock, "/v1.41/containers/json")
    subprocess.run(engine.cli + ["rm", "-f", *names], stdout=subprocess.DEVNULL)
    results["logs_mb_per_s"] = logs_throughput(engine, log_mb)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--logs-mb", type=int, default=100)
    parser.add_argument("--engines", default="skiff,docker")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    engines = {"skiff": Skiff, "docker": Docker}
    results = {}
    for name, cls in installed(args.engines, engines):
        with cls() as engine:
            results[name] = measure(engine, args.containers, args.logs_mb)
        print(name, json.dumps(results[name]))
    keys = sorted({k for r in results.values() for k in r})
    print(f"\n{'':28}" + "".join(f"{n:>12}" for n in results))
    for key in keys:
        print(f"{key:28}" + "".join(f"{results[n].get(key, ''):>12}" for n in results))
    write_results(args.out, "daemon", {"results": results})


if __name__ == "__main__":
    main()
