"""The daemon's runtimes: `default-runtime` and `runtimes` in daemon.json, `--add-runtime`
and `--default-runtime` on skiffd, what /info says, and the errors for a bad setting."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT, private_daemon

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def runc_daemon(test_images, tmp_path_factory):
    if not shutil.which("runc"):
        pytest.skip("runc is not installed")
    config = str(tmp_path_factory.mktemp("runtime-config") / "daemon.json")
    with open(config, "w") as f:   # runc again under another name, with a global flag
        json.dump({"default-runtime": "runc",
                   "runtimes": {"runc-debug": {"path": shutil.which("runc"),
                                               "runtimeArgs": ["--debug"]}}}, f)
    with private_daemon(test_images, "skiff-rt-", ["--config-file", config, "--add-runtime",
                                                   f"my-runc={shutil.which('runc')}"]) as d:
        yield d


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
