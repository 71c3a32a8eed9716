#!/usr/bin/env bash
# Install everything skiff needs on a Debian host (as root), then run a real container:
#   sudo ./scripts/install.sh            install, load the busybox test image, run a container
#   sudo ./scripts/install.sh --deps     install only (what scripts/test.sh uses)
# Idempotent and quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
images=${SKIFF_TEST_IMAGES:-/var/tmp/skiff-test-images}
python=${PYTHON:-python3}

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run me as root (skiff needs namespaces, mounts and cgroups)" >&2
  exit 1
fi

# Debian packages: busybox-static for the test image, runc and crun to compare our runtime
# with, libseccomp for seccomp filters, iproute2 and nftables for networking.
debs="busybox-static runc crun libseccomp2 iproute2 nftables"
missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install.sh: installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# Python packages: skiff itself (editable, from this checkout) and the test tools.
if ! "$python" - "$here" <<'PY' 2>/dev/null
import os, shutil, sys
import h11, zstandard, pytest, docker, pexpect, skiff
assert os.path.realpath(skiff.__file__).startswith(os.path.realpath(sys.argv[1]))
assert shutil.which("skiff") and shutil.which("skiffd") and shutil.which("skiff-runtime")
PY
then
  echo "install.sh: installing skiff (pip install -e .[test])"
  "$python" -m pip install -q --disable-pip-version-check -e "$here[test]" 2>&1 \
    | grep -v -e "Running pip as the 'root' user" -e "is ignored: it is neither" || true
fi

# The test image, built from Debian's busybox-static (quick when up to date).
"$python" "$here/scripts/make_test_images.py" --out "$images" >/dev/null

if [ "${1:-}" = "--deps" ]; then
  exit 0
fi

# The main job, for real: skiffd is started by the first skiff command that needs it.
if ! skiff image inspect busybox:latest >/dev/null 2>&1; then
  skiff load -i "$images/busybox.tar"
fi
skiff run --rm busybox echo "hello from a skiff container"
