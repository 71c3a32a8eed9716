#!/usr/bin/env python3
"""Container networking: set-up cost and throughput, skiff beside docker (private daemons).

    python3 bench/network.py [--runs 15] [--engines skiff,docker] [--seconds 3]

- set-up: `run --rm busybox true` on the default bridge minus the same with `--network none`
  (medians of runs interleaved one by one, so the shared machine's drift hits both alike);
- container to container: iperf3 between two containers on the default bridge;
- host to a published port: iperf3 from the host to `-p 127.0.0.1:PORT:5201` (skiff: nft
  DNAT; docker: iptables DNAT with --userland-proxy=false, its kernel path).

iperf3 (Debian's, installed by scripts/install.sh) runs inside the containers' own network
namespaces (nsenter --net=/proc/PID/ns/net), so the image needs no iperf3 and both engines'
packets take the path their containers' would. Each daemon runs in a network namespace of its
own, made here, with its bridge and rules (docker's iptables, skiff's nft table) inside it:
nothing touches the host's firewall, and both are measured in the same surroundings; the
"host" of host-to-published-port is that namespace. Everything is removed at the end.
Traffic goes only to loopback and the benchmark's own containers.
Prints a table and writes the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))

from run import (IMAGES, command, installed, own_cgroup, remove_cgroup_parent, sh,  # noqa: E402
                 stats, wait_for_socket, write_results)

SKIFF_NET = {"bridge": "skbench0", "bip": "10.86.255.1/24", "pool": "base=10.86.0.0/20,size=28",
             "table": "skiff_bench"}
IPERF_PORT = 5201


def quiet(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


class SkiffNet:
    """skiffd in a network namespace of the benchmark's own, as docker below: both engines'
    bridges, rules and published ports measured in the same surroundings, none on the host."""
    name = "skiff"

    def __enter__(self):
        from skiff.network import links, netns

        self.dir = tempfile.mkdtemp(prefix="skiff-netbench-")
        self.host_netns = f"{self.dir}/netns"
        netns.create(self.host_netns)
        links.lo_up(self.host_netns)
        self.sock = os.path.join(self.dir, "run", "skiff.sock")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={self.host_netns}",
             command("skiffd"), "--root", os.path.join(self.dir, "root"),
             "--exec-root", os.path.join(self.dir, "run"), "-H", f"unix://{self.sock}",
             "--cgroup-parent", "skiff-netbench", "--bridge", SKIFF_NET["bridge"],
             "--bip", SKIFF_NET["bip"], "--default-address-pool", SKIFF_NET["pool"],
             "--nft-table", SKIFF_NET["table"]],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "skiffd.log"), "w"))
        wait_for_socket(self.sock)
        self.cli = [command("skiff"), "-H", f"unix://{self.sock}"]
        sh(self.cli + ["load", "-q", "-i", os.path.join(IMAGES, "busybox.tar")])
        return self

    def __exit__(self, *exc):
        quiet(self.cli + ["container", "prune", "-f"])
        ids = sh(self.cli + ["ps", "-aq"]).stdout.split()
        if ids:
            quiet(self.cli + ["rm", "-f", *ids])
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        pid_file = os.path.join(self.dir, "run", "monitor.pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
        subprocess.run(["umount", "-R", self.dir], stderr=subprocess.DEVNULL)
        for mount in reversed(_mounts_under(self.dir)):
            quiet(["umount", "-l", mount])
        from skiff.network import netns

        netns.remove(self.host_netns)   # its bridge and nft table go with the namespace
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_cgroup_parent("skiff-netbench")


class DockerNet:
    """containerd + dockerd, with dockerd (and so docker0, its veths and iptables rules) in a
    network namespace of the benchmark's own."""
    name = "docker"

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("dockerd") and shutil.which("containerd") and
                    shutil.which("docker"))

    def __enter__(self):
        from skiff.network import links, netns

        self.dir = d = tempfile.mkdtemp(prefix="docker-netbench-")
        self.host_netns = f"{d}/netns"
        netns.create(self.host_netns)
        links.lo_up(self.host_netns)
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
            ["nsenter", f"--net={self.host_netns}", "dockerd",
             f"--containerd={self.containerd_sock}", "--storage-driver=overlay2",
             "-H", f"unix://{self.sock}", f"--data-root={d}/data", f"--exec-root={d}/exec",
             f"--pidfile={d}/docker.pid", "--userland-proxy=false",
             f"--cgroup-parent={own_cgroup().rstrip('/')}/docker-netbench"],
            stdout=subprocess.DEVNULL, stderr=open(f"{d}/dockerd.log", "w"))
        wait_for_socket(self.sock)
        self.cli = ["docker", "-H", f"unix://{self.sock}"]
        for _ in range(100):
            if quiet(self.cli + ["version"]).returncode == 0:
                break
            time.sleep(0.1)
        sh(self.cli + ["load", "-q", "-i", os.path.join(IMAGES, "busybox.tar")])
        return self

    def __exit__(self, *exc):
        from skiff.network import netns

        ids = subprocess.run(self.cli + ["ps", "-aq"], capture_output=True,
                             text=True).stdout.split()
        if ids:
            quiet(self.cli + ["rm", "-f", *ids])
        for proc in (self.dockerd, self.containerd):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["umount", "-R", self.dir], stderr=subprocess.DEVNULL)
        for mount in reversed(_mounts_under(self.dir)):
            quiet(["umount", "-l", mount])
        netns.remove(self.host_netns)   # docker0 and its rules go with the namespace
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_cgroup_parent("docker-netbench")


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


# ------------------------------------------------------------------------------- measures
def setup_cost(engine, runs: int) -> dict:
    """`run --rm` on the default bridge and with --network none, interleaved."""
    bridge = engine.cli + ["run", "--rm", "busybox", "true"]
    none = engine.cli + ["run", "--rm", "--network", "none", "busybox", "true"]
    for cmd in (bridge, none):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    times = {"bridge": [], "none": []}
    for _ in range(runs):
        for key, cmd in (("bridge", bridge), ("none", none)):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times[key].append((time.perf_counter() - start) * 1000)
    out = {key: stats(values) for key, values in times.items()}
    out["setup_ms"] = round(out["bridge"]["median_ms"] - out["none"]["median_ms"], 1)
    return out


def _container(engine, *flags) -> tuple[str, int, str]:
    cid = sh(engine.cli + ["run", "-d", *flags, "busybox", "sleep", "600"]).stdout.strip()
    info = json.loads(sh(engine.cli + ["inspect", cid]).stdout)[0]
    ip = info["NetworkSettings"]["IPAddress"] or next(
        iter(info["NetworkSettings"]["Networks"].values()))["IPAddress"]
    return cid, info["State"]["Pid"], ip


def _iperf(server_netns: str, client_netns: str | None, target: str, port: int,
           seconds: int) -> float:
    """Gbit/s received, iperf3's server in one namespace and its client in another (None:
    the host's)."""
    server = subprocess.Popen(["nsenter", f"--net={server_netns}", "iperf3", "-s", "-1",
                               "-p", str(IPERF_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = ["iperf3", "-c", target, "-p", str(port), "-t", str(seconds), "-J"]
        if client_netns:
            client = ["nsenter", f"--net={client_netns}"] + client
        for _ in range(50):
            result = subprocess.run(client, capture_output=True, text=True)
            try:
                received = json.loads(result.stdout)["end"]["sum_received"]
                return round(received["bits_per_second"] / 1e9, 2)
            except (ValueError, KeyError):
                time.sleep(0.1)   # the server is not listening yet
        raise RuntimeError(f"iperf3 failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    finally:
        server.kill()
        server.wait()


class Pairs:
    """An engine's three containers for iperf3: a and b on the default bridge, c with its
    iperf3 port published on 127.0.0.1."""

    def __init__(self, engine):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.engine = engine
        self.a, self.a_pid, _ = _container(engine)
        self.b, self.b_pid, self.b_ip = _container(engine)
        self.c, self.c_pid, _ = _container(engine, "-p",
                                           f"127.0.0.1:{self.port}:{IPERF_PORT}")

    def c2c(self, seconds: int) -> float:
        return _iperf(f"/proc/{self.b_pid}/ns/net", f"/proc/{self.a_pid}/ns/net", self.b_ip,
                      IPERF_PORT, seconds)

    def h2p(self, seconds: int) -> float:
        return _iperf(f"/proc/{self.c_pid}/ns/net", self.engine.host_netns, "127.0.0.1",
                      self.port, seconds)

    def remove(self) -> None:
        quiet(self.engine.cli + ["rm", "-f", self.a, self.b, self.c])


def throughput(engines: dict, seconds: int, repeats: int) -> dict:
    """Both engines' figures taken turn by turn (the shared machine's load drifts)."""
    pairs = {name: Pairs(engine) for name, engine in engines.items()}
    out = {name: {"c2c_all": [], "h2p_all": []} for name in engines}
    try:
        for _ in range(repeats):
            for name, pair in pairs.items():
                out[name]["c2c_all"].append(pair.c2c(seconds))
                out[name]["h2p_all"].append(pair.h2p(seconds))
    finally:
        for pair in pairs.values():
            pair.remove()
    for name, r in out.items():
        r["container_to_container_gbps"] = statistics.median(r["c2c_all"])
        r["host_to_published_port_gbps"] = statistics.median(r["h2p_all"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="skiff,docker")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if not shutil.which("iperf3"):
        raise SystemExit("iperf3 not found: run scripts/install.sh first")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_test_images.py"),
                    "--out", IMAGES], check=True, stdout=subprocess.DEVNULL)
    classes = {"skiff": SkiffNet, "docker": DockerNet}
    results = {}
    with contextlib.ExitStack() as stack:
        engines = {}
        for name, cls in installed(args.engines, classes):
            engines[name] = stack.enter_context(cls())
        for name, engine in engines.items():
            results[name] = {"setup": setup_cost(engine, args.runs)}
        for name, figures in throughput(engines, args.seconds, args.repeats).items():
            results[name].update(figures)
    print(f"\n{'engine':8} {'bridge run':>11} {'none run':>9} {'set-up':>8} "
          f"{'c2c Gbit/s':>11} {'host->port Gbit/s':>18}")
    for name, r in results.items():
        s = r["setup"]
        print(f"{name:8} {s['bridge']['median_ms']:>8} ms {s['none']['median_ms']:>6} ms "
              f"{s['setup_ms']:>5} ms {r['container_to_container_gbps']:>11} "
              f"{r['host_to_published_port_gbps']:>18}")
    if "skiff" in results and "docker" in results:
        sk, dk = results["skiff"], results["docker"]
        if dk["setup"]["setup_ms"] > 0:
            print(f"set-up skiff / docker: {sk['setup']['setup_ms'] / dk['setup']['setup_ms']:.2f}")
        for key in ("container_to_container_gbps", "host_to_published_port_gbps"):
            print(f"{key} skiff / docker: {sk[key] / dk[key]:.2f}")
    write_results(args.out, "network", {"results": results})


if __name__ == "__main__":
    main()
