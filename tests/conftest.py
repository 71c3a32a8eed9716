"""Fixtures shared by every test package. Keep this small: only what several packages use."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, SRC)

TEST_IMAGES_DIR = os.environ.get("SKIFF_TEST_IMAGES", "/var/tmp/skiff-test-images")
# Daemons started by tests contact loopback registries only (never Docker Hub).
os.environ.setdefault("SKIFF_REGISTRY_ALLOW", "")


@pytest.fixture(scope="session")
def test_images() -> str:
    """Directory with busybox.tar (docker-archive), busybox-oci/ and busybox-oci.tar, built once
    by scripts/make_test_images.py (it skips the work when they are up to date)."""
    if not os.path.exists("/bin/busybox"):
        pytest.skip("/bin/busybox is missing: apt-get install busybox-static")
    script = os.path.join(ROOT, "scripts", "make_test_images.py")
    subprocess.run([sys.executable, script, "--out", TEST_IMAGES_DIR], check=True,
                   stdout=subprocess.DEVNULL)
    return TEST_IMAGES_DIR
