#!/usr/bin/env bash
# Install everything skiff needs on a Debian host (as root), then run a real container:
#   sudo ./scripts/install.sh            install, load the busybox test image, run a container
#   sudo ./scripts/install.sh --deps     install only (what scripts/test.sh uses)
# Idempotent and quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
images=${SKIFF_TEST_IMAGES:-/var/tmp/skiff-test-images}

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run me as root (skiff needs namespaces, mounts and cgroups)" >&2
  exit 1
fi

# Debian packages: busybox-static for the test image, runc and crun to compare our runtime
# with, libseccomp for seccomp filters, iproute2 and nftables for networking, iperf3 for
# bench/network.py; python3-venv for skiff's virtualenv on Debian's Python.
debs="busybox-static runc crun libseccomp2 iproute2 nftables iperf3 docker-registry skopeo umoci
      python3-venv"
missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install.sh: installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# qemu, a Debian kernel and a cached initramfs, for the tests that run on a pure cgroup v2
# hierarchy inside a throw-away VM (this machine's cgroups are v1).
"$here/scripts/cgroup2-vm.sh" --setup

# Python packages: skiff itself (editable, from this checkout) and the test tools, in a
# virtualenv of skiff's own: its commands start without scanning the system's site-packages
# (the CLI's start-up counts in every command), and nothing of the system's Python changes.
# Its interpreter: Debian's python3 when it is 3.11 or later, as it is built with PGO and LTO
# and starts ~2 ms sooner than a plain source build (pyenv's python3, first on PATH here), a
# fifth of `skiff exec`'s time; else python3 from PATH; $PYTHON chooses. A venv made from
# another interpreter is made again.
venv=${SKIFF_VENV:-/opt/skiff}
python=${PYTHON:-}
if [ -z "$python" ]; then
  python=python3
  if /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' \
      2>/dev/null; then
    python=/usr/bin/python3
  fi
fi
interpreter='import sys; print(sys.base_prefix, sys.version)'
if [ -f "$venv/pyvenv.cfg" ] && \
   [ "$("$venv/bin/python" -c "$interpreter" 2>/dev/null)" != "$("$python" -c "$interpreter")" ]
then
  echo "install.sh: $venv was made from another Python; making it again from $python"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "install.sh: creating $venv"
  "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" - "$here" <<'PY' 2>/dev/null
import os, sys
import h11, zstandard, isal, pyroute2, pytest, docker, pexpect, skiff, skiff.tarfilters
assert os.path.realpath(skiff.__file__).startswith(os.path.realpath(sys.argv[1]))
for cmd in ("skiff", "skiffd", "skiff-runtime", "skiff-monitor"):
    assert os.path.exists(os.path.join(sys.prefix, "bin", cmd))
PY
then
  echo "install.sh: installing skiff into $venv (pip install -e .[test])"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[test]" 2>&1 \
    | grep -v -e "is ignored: it is neither" || true
fi
# Byte-compile now: with PYTHONDONTWRITEBYTECODE set (as on CI) every command would compile
# skiff's modules from source again.
"$venv/bin/python" -m compileall -q "$here/src/skiff" >/dev/null
for cmd in skiffd skiff-runtime skiff-monitor; do
  [ "$(readlink "/usr/local/bin/$cmd" 2>/dev/null)" = "$venv/bin/$cmd" ] || \
    ln -sf "$venv/bin/$cmd" "/usr/local/bin/$cmd"
done
# `skiff` starts on every command: its launcher skips site (-S: ~9 ms of .pth processing)
# and pip's script's `import re`, and puts skiff's and the venv's directories on sys.path
# itself (-I: the environment's PYTHON* variables cannot change what a root command runs).
# Its cyclic collector waits for 10,000 new objects, not 700: at 700 it ran four times while
# `exec` imported its modules (~0.3 ms) and found nothing, as a command keeps what it imports.
"$venv/bin/python" - "$venv/bin/python" /usr/local/bin/skiff <<'PY'
import os, sys, sysconfig
import skiff
src = os.path.dirname(os.path.dirname(os.path.abspath(skiff.__file__)))
paths = list(dict.fromkeys([src, sysconfig.get_paths()["purelib"],
                             sysconfig.get_paths()["platlib"]]))
text = (f"#!{sys.argv[1]} -IS\n"
        "# skiff's launcher (scripts/install.sh): python -I -S, the paths set here\n"
        "import gc, sys\n"
        "gc.set_threshold(10000, 10, 10)\n"
        f"sys.path += {paths!r}\n"
        "from skiff.cli.main import entry\n"
        "entry()\n")
tmp = sys.argv[2] + ".new"
if os.path.islink(sys.argv[2]) or not os.path.exists(sys.argv[2]) or open(sys.argv[2]).read() != text:
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, sys.argv[2])
PY

# The test image, built from Debian's busybox-static (quick when up to date).
"$venv/bin/python" "$here/scripts/make_test_images.py" --out "$images" >/dev/null

if [ "${1:-}" = "--deps" ]; then
  exit 0
fi

# The main job, for real: skiffd is started by the first skiff command that needs it.
export PATH="/usr/local/bin:$PATH"
if ! skiff image inspect busybox:latest >/dev/null 2>&1; then
  skiff load -i "$images/busybox.tar"
fi
skiff run --rm busybox echo "hello from a skiff container"
