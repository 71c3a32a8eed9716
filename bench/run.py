#!/usr/bin/env python3
"""skiff's benchmark suite: hot paths timed end to end, beside docker and podman.

    python3 bench/run.py [--runs 20] [--install-peers] [--engines skiff,docker,podman]

Each engine gets its own private daemon/root (started here, stopped at the end) and loads the
same busybox docker-archive that the tests build, so every engine runs the same bytes. Prints a
table and writes the figures as JSON under bench/results/.

Measured now: `run --rm busybox true` (the whole CLI -> daemon -> container -> exit path).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMAGES = os.environ.get("SKIFF_TEST_IMAGES", "/var/tmp/skiff-test-images")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def wait_for_socket(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.05)


def time_runs(cmd: list[str], runs: int, env=None, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


def stats(times: list[float]) -> dict:
    ordered = sorted(times)
    q = statistics.quantiles(ordered, n=10) if len(ordered) >= 2 else [ordered[0]] * 9
    return {"median_ms": round(statistics.median(ordered), 1), "p10_ms": round(q[0], 1),
            "p90_ms": round(q[-1], 1), "min_ms": round(ordered[0], 1),
            "max_ms": round(ordered[-1], 1), "runs": len(ordered)}


def installed(names: str, classes: dict, hint: str = ""):
    """(name, engine class) for each of the comma-separated `names` whose engine is
    installed; the others are named as skipped."""
    for name in names.split(","):
        cls = classes[name]
        if hasattr(cls, "available") and not cls.available():
            print(f"{name}: not installed, skipped{hint}")
            continue
        yield name, cls


Z95 = statistics.NormalDist().inv_cdf(0.975)


def geometric_summary(ratios: list[float]) -> dict:
    """Run-by-run ratios summed up: their geometric mean with its 95% confidence interval
    (normal approximation over the log ratios) and their median."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    half = Z95 * statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else 0
    return {"mean": round(math.exp(mean), 3),
            "ci95": [round(math.exp(mean - half), 3), round(math.exp(mean + half), 3)],
            "median": round(statistics.median(ratios), 3)}


def print_latencies(results: dict, key: str, label: str) -> None:
    """A table of one latency per engine, and skiff's ratio to each peer."""
    print(f"\n{'engine':8} {label:>24}   p10..p90")
    for name, r in results.items():
        s = r[key]
        print(f"{name:8} {s['median_ms']:>21} ms   {s['p10_ms']}..{s['p90_ms']} ms")
    if "skiff" in results:
        for peer in ("docker", "podman"):
            if peer in results:
                ratio = results["skiff"][key]["median_ms"] / results[peer][key]["median_ms"]
                print(f"skiff / {peer}: {ratio:.2f}")


def write_results(out_dir: str, prefix: str, payload: dict) -> str:
    """bench/results/PREFIX-DATE.json with the figures (and the date)."""
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, time.strftime(f"{prefix}-%Y%m%d-%H%M%S.json"))
    with open(out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), **payload}, f, indent=1)
    print(f"figures written to {out}")
    return out


# ---------------------------------------------------------------------------------- engines
def command(name: str) -> str:
    """The command a user's shell finds after scripts/install.sh (which puts skiff's in
    /usr/local/bin, ahead of version-manager shims that would add their own start-up)."""
    found = shutil.which(name, path="/usr/local/bin:" + os.environ.get("PATH", ""))
    if not found:
        raise SystemExit(f"{name} not found: run scripts/install.sh first")
    return found


def own_cgroup() -> str:
    """Our cgroup (the memory hierarchy's, which is the deepest on hybrid hosts)."""
    with open("/proc/self/cgroup") as f:
        paths = {}
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            paths[controllers] = path
    return paths.get("memory") or paths.get("") or "/"


def bench_network_flags(tag: str) -> list[str]:
    """A bench daemon's own bridge, /24 and nft table (never a developer's skiff0, nor
    another bench's running at the same time): a /24 of 10.86.0.0/16 the host does not route
    yet, and names from `tag` (the daemon's unique directory)."""
    import ipaddress
    import random

    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout.split()
    routed = [ipaddress.ip_network(w, strict=False) for w in routes
              if "/" in w and w[0].isdigit()]
    while True:
        net = ipaddress.ip_network(f"10.86.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(r) for r in routed):
            break
    suffix = "".join(c for c in tag.lower() if c.isalnum())[-8:]
    return ["--bridge", f"skb{suffix}", "--bip", f"{net.network_address + 1}/24",
            "--nft-table", f"skiff_bench_{suffix}"]


class Skiff:
    name = "skiff"

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="skiff-bench-")
        self.sock = os.path.join(self.dir, "run", "skiff.sock")
        self.network_flags = bench_network_flags(os.path.basename(self.dir))
        self.proc = subprocess.Popen(
            [command("skiffd"), "--root", os.path.join(self.dir, "root"),
             "--exec-root", os.path.join(self.dir, "run"), "-H", f"unix://{self.sock}",
             "--cgroup-parent", "skiff-bench", *self.network_flags],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "skiffd.log"), "w"))
        wait_for_socket(self.sock)
        self.cli = [command("skiff"), "-H", f"unix://{self.sock}"]
        sh(self.cli + ["load", "-q", "-i", os.path.join(IMAGES, "busybox.tar")])
        return self

    def run_cmd(self):   # as the peers': no network (bench/network.py measures that)
        return self.cli + ["run", "--rm", "--network", "none", "busybox", "true"]

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        pid_file = os.path.join(self.dir, "run", "monitor.pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        subprocess.run(["umount", "-R", self.dir], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_cgroup_parent("skiff-bench")
        # the bench daemon's own bridge and nft table (made when a container first used them)
        subprocess.run(["ip", "link", "del", self.network_flags[1]], stderr=subprocess.DEVNULL)
        subprocess.run(["nft", "delete", "table", "ip", self.network_flags[5]],
                       stderr=subprocess.DEVNULL)


def remove_cgroup_parent(name: str) -> None:
    """Remove the (by now empty) cgroup directories `name` beneath our own cgroups."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            sub = controllers.split(",")[0].replace("name=", "") if controllers else "unified"
            top = os.path.join("/sys/fs/cgroup", sub, path.lstrip("/"), name)
            for dirpath, _, _ in sorted(os.walk(top), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


class Docker:
    name = "docker"

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("dockerd") and shutil.which("containerd") and
                    shutil.which("docker"))

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="docker-bench-")
        d = self.dir
        self.containerd_sock = f"{d}/containerd.sock"
        cfg = f"{d}/containerd.toml"
        with open(cfg, "w") as f:
            f.write(f'version = 2\nroot = "{d}/containerd-root"\nstate = "{d}/containerd-state"\n'
                    f'[grpc]\n  address = "{self.containerd_sock}"\n')
        self.containerd = subprocess.Popen(["containerd", "--config", cfg],
                                           stdout=subprocess.DEVNULL,
                                           stderr=open(f"{d}/containerd.log", "w"))
        wait_for_socket(self.containerd_sock)
        self.sock = f"{d}/docker.sock"
        self.dockerd = subprocess.Popen(
            ["dockerd", f"--containerd={self.containerd_sock}", "--storage-driver=overlay2",
             "-H", f"unix://{self.sock}", f"--data-root={d}/data", f"--exec-root={d}/exec",
             f"--pidfile={d}/docker.pid", "--bridge=none", "--iptables=false",
             f"--cgroup-parent={own_cgroup().rstrip('/')}/docker-bench"],
            stdout=subprocess.DEVNULL, stderr=open(f"{d}/dockerd.log", "w"))
        wait_for_socket(self.sock)
        self.cli = ["docker", "-H", f"unix://{self.sock}"]
        for _ in range(100):
            if subprocess.run(self.cli + ["version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        sh(self.cli + ["load", "-q", "-i", os.path.join(IMAGES, "busybox.tar")])
        return self

    def run_cmd(self):
        return self.cli + ["run", "--rm", "--network", "none", "busybox", "true"]

    def __exit__(self, *exc):
        for proc in (self.dockerd, self.containerd):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["umount", "-R", self.dir], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


class Podman:
    name = "podman"

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("podman"))

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="podman-bench-")
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            # The default ulimits need CAP_SYS_RESOURCE, which these machines withhold.
            f.write('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                    '"nproc=32768:32768"]\n[engine]\nruntime = "runc"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.cli = ["podman", "--root", f"{self.dir}/root", "--runroot", f"{self.dir}/run"]
        sh(self.cli + ["load", "-q", "-i", os.path.join(IMAGES, "busybox.tar")], env=self.env)
        return self

    def run_cmd(self):
        return self.cli + ["run", "--rm", "--network", "none", "busybox", "true"]

    def __exit__(self, *exc):
        subprocess.run(self.cli + ["system", "reset", "-f"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["umount", "-R", self.dir], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--engines", default="skiff,docker,podman")
    parser.add_argument("--install-peers", action="store_true",
                        help="apt-get install docker.io containerd podman first")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if args.install_peers:
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io", "containerd", "runc",
                        "podman"], check=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    engines = {"skiff": Skiff, "docker": Docker, "podman": Podman}
    results = {}
    for name, cls in installed(args.engines, engines, " (--install-peers installs it)"):
        with cls() as engine:
            times = time_runs(engine.run_cmd(), args.runs, env=getattr(engine, "env", None))
            results[name] = {"run_rm_true": stats(times)}
    print_latencies(results, "run_rm_true", "run --rm busybox true")
    write_results(args.out, "run", {"results": results})


if __name__ == "__main__":
    main()
