"""Volumes under `userns-remap`: the container's (remapped) root owns a new volume and can
write to it; copy-up shows the image's owners inside the container, shifted on the host."""

import os

import pytest

from tests.integration.test_userns import remapped  # noqa: F401  (the remapped daemon)

pytestmark = [pytest.mark.root]


def test_volume_under_userns_remap(remapped):  # noqa: F811
    client = remapped.client()
    try:
        out = client.containers.run("busybox", ["sh", "-c", "echo w > /v/f && stat -c %u /v/f"],
                                    volumes=["nsvol:/v"], remove=True)
        assert out == b"0\n"   # root in the container: it may write into the new volume
        host_root = os.stat(os.path.join(remapped.root, "volumes", "nsvol", "_data")).st_uid
        assert host_root != 0
        out = client.containers.run("busybox", ["stat", "-c", "%u:%g", "/etc/passwd"],
                                    volumes=["nsvol2:/etc"], remove=True)
        assert out == b"0:0\n"   # copied up: the image's owner, as the container sees it
        copied = os.stat(os.path.join(remapped.root, "volumes", "nsvol2", "_data", "passwd"))
        assert copied.st_uid == host_root   # and shifted on the host
    finally:
        for name in ("nsvol", "nsvol2"):
            try:
                client.volumes.get(name).remove(force=True)
            except Exception:
                pass
