"""Two daemons given one bridge and table name (a misconfiguration, but an easy one): the
one that stops with nothing of its own running leaves the bridge and rules that the other's
containers still use."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from tests.integration.conftest import Daemon

pytestmark = pytest.mark.root


def test_stopping_one_daemon_keeps_the_bridge_another_uses(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sleep", "300"], detach=True, name="shared-bridge")
    tmp = tempfile.mkdtemp(prefix="skiff-twin-", dir="/var/tmp")
    twin = Daemon(tmp)
    twin.net = daemon.net          # the same bridge, subnet and table names
    try:
        twin.start()
        twin.stop()
        assert os.path.isdir(f"/sys/class/net/{daemon.net['bridge']}")
        c.reload()
        gateway = c.attrs["NetworkSettings"]["Gateway"]
        assert c.exec_run(["ping", "-c", "1", "-W", "2", gateway]).exit_code == 0
    finally:
        c.remove(force=True)
        pid = twin.monitor_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
