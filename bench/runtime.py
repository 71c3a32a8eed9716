#!/usr/bin/env python3
"""Runtime benchmarks: what limits, --privileged and --init cost a container's start, and what
the --init PID 1 costs in memory; skiff-runtime beside runc and crun when installed.

    python3 bench/runtime.py [--runs 30] [--json bench/results/runtime.json]

Each case is one bundle (a busybox rootfs, config.json from skiff.engine.hostconfig for a
HostConfig) run to completion with `true`: in-process through skiff.runtime.spawn (what
skiff-monitor does), and as `skiff-runtime run`, `runc run`, `crun run` (a process start
each). Times are wall-clock, median and 90th percentile, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

MiB = 1 << 20
CASES = {
    "defaults": {},
    "limits": {"Memory": 64 * MiB, "MemorySwap": 64 * MiB, "NanoCpus": 500_000_000,
               "PidsLimit": 64, "CpuShares": 512,
               "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]},
    "privileged": {"Privileged": True},
    "init": {"Init": True},
}


def make_rootfs(path: str) -> str:
    os.makedirs(os.path.join(path, "bin"))
    for d in ("etc", "tmp", "proc", "sys", "dev"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(path, "bin", "busybox"))
    for name in ("sh", "true", "sleep", "cat"):
        os.symlink("busybox", os.path.join(path, "bin", name))
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    return path


def bundle_for(tmp: str, name: str, host_config: dict, args, cgroup_parent: str) -> str:
    from skiff.engine import hostconfig
    from skiff.oci.spec import default_spec
    spec = default_spec(list(args), ["PATH=/bin"], hostname="bench",
                        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}])
    spec["root"] = {"path": os.path.join(tmp, "rootfs"), "readonly": True}
    spec["linux"]["cgroupsPath"] = f"{cgroup_parent}/{name}"
    hostconfig.apply(spec, host_config)
    path = os.path.join(tmp, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f)
    return path


def time_spawn(bundle: str, cid: str, runs: int) -> list[float]:
    from skiff import runtime
    null = os.open("/dev/null", os.O_RDWR)
    out = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            pid = runtime.spawn(bundle, cid, stdio=(null, null, null))
            os.waitpid(pid, 0)
            runtime.cleanup(bundle, cid)
            out.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(null)
    return out


def time_cli(argv_for, bundle: str, cid: str, runs: int) -> list[float]:
    out = []
    for i in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv_for(bundle, f"{cid}-{i}"), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode(errors="replace")[-500:])
    return out


def init_pss_kb(bundle: str, cid: str) -> int:
    """PSS of the --init PID 1 (the reaper) while the command sleeps."""
    from skiff import runtime
    null = os.open("/dev/null", os.O_RDWR)
    pid = runtime.spawn(bundle, cid, stdio=(null, null, null))
    try:
        time.sleep(0.3)
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)
        os.close(null)


def remove_cgroups(name: str) -> None:
    """rmdir `name` and what is below it in every cgroup mount, the hybrid host's v2 tree
    included (runc makes its cgroups there too), below our own cgroup or at the top."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if " - cgroup" in line]
    for mountpoint in mounts:
        for top, _dirs, _files in os.walk(mountpoint):
            if os.path.basename(top) == name:
                for sub, _d, _f in sorted(os.walk(top), key=lambda t: -len(t[0])):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
                break
            if top.count("/") - mountpoint.count("/") > 3:
                _dirs[:] = []


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 2), "runs": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime.py: run me as root")
    tmp = tempfile.mkdtemp(prefix="skiff-bench-rt-", dir="/var/tmp")
    parent = f"skiff-bench-rt-{os.getpid()}"
    results: dict = {}
    runtimes = {"skiff-runtime": [shutil.which("skiff-runtime") or sys.executable, *(
        [] if shutil.which("skiff-runtime") else ["-m", "skiff.runtime"])]}
    for name in ("runc", "crun"):
        if shutil.which(name):
            runtimes[name] = [shutil.which(name)]
    try:
        make_rootfs(os.path.join(tmp, "rootfs"))
        for case, host_config in CASES.items():
            bundle = bundle_for(tmp, case, host_config, ["true"], parent)
            row = {"spawn (in-process)": summary(time_spawn(bundle, f"b-{case}", args.runs))}
            for rt, argv in runtimes.items():
                if case == "init" and rt != "skiff-runtime":
                    continue  # the annotation is skiff-runtime's; the others ignore it
                try:
                    row[f"{rt} run"] = summary(time_cli(
                        lambda b, c, argv=argv, rt=rt: [
                            *argv, "--root", os.path.join(tmp, "state-" + rt), "run",
                            "--bundle", b, c], bundle, f"c-{case}", max(5, args.runs // 3)))
                except RuntimeError as e:
                    row[f"{rt} run"] = {"error": str(e).strip().splitlines()[-1]}
            results[case] = row
        sleeper = bundle_for(tmp, "init-sleep", {"Init": True}, ["sleep", "30"], parent)
        results["init_pid1_pss_kb"] = init_pss_kb(sleeper, "b-init-sleep")
    finally:
        remove_cgroups(parent)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for row in results.values() if isinstance(row, dict) for k in row)
    for case, row in results.items():
        if not isinstance(row, dict):
            print(f"{case}: {row}")
            continue
        print(case)
        for what, s in row.items():
            if "error" in s:
                print(f"  {what:<{width}}  failed: {s['error']}")
            else:
                print(f"  {what:<{width}}  median {s['median_ms']:8.2f} ms   "
                      f"p90 {s['p90_ms']:8.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
