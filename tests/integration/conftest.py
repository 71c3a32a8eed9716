"""A private skiffd per test module: its own root, exec-root and socket, removed afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def cgroup_dirs_under(name: str) -> list[str]:
    """Cgroup directories called `name` anywhere beneath our own cgroups."""
    found = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            sub = controllers.split(",")[0].replace("name=", "") if controllers else "unified"
            base = f"/sys/fs/cgroup/{sub}{path}"
            for dirpath, dirnames, _ in os.walk(base):
                if name in dirnames:
                    found.append(os.path.join(dirpath, name))
    return found


DAEMON_NETWORKS: list[dict] = []   # every Daemon's bridge and nft table, this session


def pytest_sessionfinish(session, exitstatus):
    """Test modules with daemons of their own (subclasses of Daemon) tear them down their
    own way: their bridges and nft tables go here, once every daemon has stopped."""
    from tests.integration import netfixture

    for net in DAEMON_NETWORKS:
        netfixture.cleanup(net)


def netfixture_flags(net: dict) -> list[str]:
    from tests.integration import netfixture

    return netfixture.flags(net)


def kill_cgroup_processes(name: str) -> None:
    """SIGKILL whatever still runs in the test daemon's cgroups (a container whose monitor a
    test killed): only processes this test session's daemon started live there."""
    pids = set()
    for parent in cgroup_dirs_under(name):
        for dirpath, _, files in os.walk(parent):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(p) for p in f.read().split())
                except OSError:
                    continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if pids:
        time.sleep(0.2)   # let them go before their cgroups are removed


class Daemon:
    def __init__(self, tmp: str):
        self.dir = tmp
        self.root = os.path.join(tmp, "root")
        self.exec_root = os.path.join(tmp, "run")
        self.sock = os.path.join(self.exec_root, "skiff.sock")
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen | None = None
        self.cgroup_parent = "skiff-test-" + os.path.basename(tmp)
        self.extra_args: list[str] = []   # more skiffd flags, for a test module's own daemon
        from tests.integration import netfixture   # its own bridge, subnet, nft table

        self.net = netfixture.pick(os.path.basename(tmp))
        DAEMON_NETWORKS.append(self.net)   # swept at the session's end, whoever stops it
        self.bridges: list[str] = []

    def start(self) -> None:
        log = open(os.path.join(self.dir, "skiffd.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.api.daemon", "--root", self.root, "--exec-root",
             self.exec_root, "-H", self.host, "--cgroup-parent", self.cgroup_parent,
             *self.extra_args,
             *netfixture_flags(self.net)],
            stdout=log, stderr=log,
            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
        deadline = time.monotonic() + 20
        while not self.answers():  # a killed daemon's socket file may still be there
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("skiffd did not start:\n" + self.log())
            time.sleep(0.02)

    def answers(self) -> bool:
        import socket

        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def monitor_pid(self) -> int | None:
        try:
            with open(os.path.join(self.exec_root, "monitor.pid")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "skiffd.log")) as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def cli(self, *args, input=None, timeout=60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "skiff.cli.main", "-H", self.host, *args],
                              input=input, capture_output=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, version="1.45", timeout=60)

    def load_busybox(self, images_dir: str) -> None:
        result = self.cli("load", "-i", os.path.join(images_dir, "busybox.tar"))
        assert result.returncode == 0, result.stderr.decode() + self.log()


def netfixture_bridges(client) -> list[str]:
    from tests.integration import netfixture

    return netfixture.bridges_of_daemon(client)


def netfixture_cleanup(d) -> None:
    # the daemon's bridges and nft table, even when a test failed half-way
    from tests.integration import netfixture

    netfixture.cleanup(d.net, d.bridges)


@contextlib.contextmanager
def private_daemon(test_images, prefix: str = "skiff-it-", extra_args=(), mode=None):
    """A started skiffd of its own (root, exec-root, socket, cgroup parent, bridge, subnet,
    nft table) with busybox loaded; everything it made is removed afterwards, even when a
    test failed half-way. `mode`: the temporary directory's (a remapped root walks it)."""
    if os.geteuid() != 0:
        pytest.skip("skiffd needs root")
    tmp = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    if mode is not None:
        os.chmod(tmp, mode)
    d = Daemon(tmp)
    d.extra_args = list(extra_args)
    try:
        d.start()
        d.load_busybox(test_images)
        yield d
    finally:
        try:
            client = d.client()
            for c in client.containers.list(all=True):
                c.remove(force=True)
            d.bridges = netfixture_bridges(client)
            client.networks.prune()
        except Exception:
            pass
        d.stop()
        pid = d.monitor_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.02)
            except OSError:
                pass
        kill_cgroup_processes(d.cgroup_parent)
        for parent in cgroup_dirs_under(d.cgroup_parent):
            for dirpath, _, _ in sorted(os.walk(parent), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        for mount in reversed(mounts_under(tmp)):
            subprocess.run(["umount", "-l", mount], stderr=subprocess.DEVNULL)
        netfixture_cleanup(d)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(test_images):
    with private_daemon(test_images) as d:
        yield d
