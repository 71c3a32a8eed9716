#!/usr/bin/env bash
# Run skiff's whole test suite (as root): installs what the tests need first.
#   sudo ./scripts/test.sh [pytest args]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install.sh" --deps
cd "$here"
export PATH="/usr/local/bin:$PATH"
exec "${SKIFF_VENV:-/opt/skiff}/bin/python" -m pytest -q -rs "$@" tests
