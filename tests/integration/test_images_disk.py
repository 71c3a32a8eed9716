"""Disk cost of containers: N containers of one image take their own writes, not N copies of
the image (the image's layers are unpacked once and shared read-only through overlay)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.root
IMAGE_MB = 24
WRITE_KB = 256
N = 6


def _disk_used(path: str) -> int:
    """Bytes of blocks allocated under `path` (one file system; hard links once)."""
    out = subprocess.run(["du", "-sx", "--block-size=1", path], capture_output=True,
                         check=True).stdout
    return int(out.split()[0])


def test_n_containers_cost_only_their_writes(daemon):
    client = daemon.client()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "head"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        big = tarfile.TarInfo("data/big.bin")
        big.size = IMAGE_MB << 20
        tar.addfile(big, io.BytesIO(os.urandom(big.size)))
    client.api.import_image_from_data(layer.getvalue(), repository="diskcost", tag="1")
    containers = []
    try:
        before = _disk_used(daemon.root)
        for i in range(N):
            c = client.containers.run(
                "diskcost:1", ["/bin/sh", "-c",
                               f"/bin/head -c {WRITE_KB * 1024} /data/big.bin > /mine.bin"],
                detach=True)
            containers.append(c)
        for c in containers:
            assert c.wait(timeout=60)["StatusCode"] == 0
        grown = _disk_used(daemon.root) - before
        own = N * WRITE_KB * 1024
        # each container: its own file plus bookkeeping (dirs, config, log, hosts files)
        assert grown < own + N * 256 * 1024, (grown, own)
        assert grown < (IMAGE_MB << 20), "containers copied the image"
        sizes = client.api.df()["Containers"]
        ours = [s for s in sizes if s["Id"] in {c.id for c in containers}]
        assert len(ours) == N
        for s in ours:  # docker's SizeRw: what the container wrote
            assert WRITE_KB * 1024 <= s["SizeRw"] < WRITE_KB * 1024 + 64 * 1024
    finally:
        for c in containers:
            c.remove(force=True)
        client.images.remove("diskcost:1")
