"""The daemon's runtimes: `default-runtime` and `runtimes` in daemon.json, `--add-runtime`
and `--default-runtime` on skiffd, what /info says, and the errors for a bad setting."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.integration.conftest import ROOT, Daemon, cgroup_dirs_under

pytestmark = [pytest.mark.root]


class ConfiguredDaemon(Daemon):
    def __init__(self, tmp, extra):
        super().__init__(tmp)
        self.extra = extra

    def start(self):
        """The fixture's skiffd command line, plus ours."""
        import time

        if hasattr(self, "extra_args"):   # the fixture takes extra flags (and adds its own)
            self.extra_args = list(self.extra)
            return super().start()
        log = open(os.path.join(self.dir, "skiffd.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.api.daemon", "--root", self.root, "--exec-root",
             self.exec_root, "-H", self.host, "--cgroup-parent", self.cgroup_parent,
             *self.extra], stdout=log, stderr=log,
            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
        deadline = time.monotonic() + 20
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("skiffd did not start:\n" + self.log())
            time.sleep(0.02)


@pytest.fixture(scope="module")
def runc_daemon(test_images):
    if os.geteuid() != 0:
        pytest.skip("skiffd needs root")
    if not shutil.which("runc"):
        pytest.skip("runc is not installed")
    tmp = tempfile.mkdtemp(prefix="skiff-rt-", dir="/var/tmp")
    config = os.path.join(tmp, "daemon.json")
    with open(config, "w") as f:   # runc again under another name, with a global flag
        json.dump({"default-runtime": "runc",
                   "runtimes": {"runc-debug": {"path": shutil.which("runc"),
                                               "runtimeArgs": ["--debug"]}}}, f)
    d = ConfiguredDaemon(tmp, ["--config-file", config,
                               "--add-runtime", f"my-runc={shutil.which('runc')}"])
    try:
        d.start()
        d.load_busybox(test_images)
        yield d
    finally:
        try:
            for c in d.client().containers.list(all=True):
                c.remove(force=True)
        except Exception:
            pass
        d.stop()
        pid = d.monitor_pid()
        if pid:
            try:
                os.kill(pid, 15)
            except OSError:
                pass
        for parent in cgroup_dirs_under(d.cgroup_parent):
            for dirpath, _, _ in sorted(os.walk(parent), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)


def test_info_lists_the_configured_runtimes(runc_daemon):
    info = runc_daemon.client().info()
    assert info["DefaultRuntime"] == "runc"
    runtimes = info["Runtimes"]
    assert {"skiff", "runc", "runc-debug", "my-runc"} <= set(runtimes)
    assert runtimes["runc-debug"] == {"path": shutil.which("runc"), "runtimeArgs": ["--debug"]}


def test_the_default_runtime_runs_containers_that_name_none(runc_daemon):
    client = runc_daemon.client()
    container = client.containers.run("busybox", ["sleep", "30"], detach=True)
    try:
        assert container.attrs["HostConfig"]["Runtime"] == "runc"
        # runc knows it: it is in runc's state directory of this daemon
        state = subprocess.run(["runc", "--root", os.path.join(runc_daemon.exec_root,
                                                               "runtime-runc"),
                                "state", container.id], capture_output=True, text=True)
        assert state.returncode == 0, state.stderr
        assert json.loads(state.stdout)["status"] == "running"
    finally:
        container.remove(force=True)


@pytest.mark.parametrize("name", ["runc-debug", "my-runc", "skiff"])
def test_added_runtimes_run_containers(runc_daemon, name):
    client = runc_daemon.client()
    out = client.containers.run("busybox", ["echo", f"via {name}"], runtime=name, remove=True)
    assert out == f"via {name}\n".encode()


def _skiffd(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "skiff.api.daemon", "--root",
                           str(tmp_path / "root"), "--exec-root", str(tmp_path / "run"), "-H",
                           f"unix://{tmp_path}/s.sock", *args], capture_output=True, timeout=30,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))


@pytest.mark.parametrize("settings,flags,message", [
    ({"default-runtime": "nope"}, [], "specified default runtime 'nope' does not exist"),
    ({}, ["--default-runtime", "nope"], "specified default runtime 'nope' does not exist"),
    ({"runtimes": {"runc": {"path": "/bin/true"}}}, [], "runtime name 'runc' is reserved"),
    ({"runtimes": {"x": {}}}, [], "runtime x: a path is required"),
    ({}, ["--add-runtime", "nopath"], "invalid runtime argument: nopath"),
])
def test_bad_runtime_settings_are_refused(tmp_path, settings, flags, message):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps(settings))
    result = _skiffd(tmp_path, "--config-file", str(config), *flags)
    assert result.returncode != 0
    assert message in result.stderr.decode()
    assert not (tmp_path / "s.sock").exists()
