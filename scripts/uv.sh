#!/usr/bin/env bash
# Run uv, installing it first where the machine has none: every make target that
# needs Python goes through here, so a fresh clone needs only python3 (3.11+).
set -euo pipefail

if command -v uv >/dev/null 2>&1; then
    exec uv "$@"
fi
if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "uv is missing: installing it with pip (python3 -m pip install --user uv)" >&2
    # A Debian or Ubuntu python3 refuses user installs without the override (PEP 668);
    # uv lives in the user's own site, apart from the system's packages.
    python3 -m pip install --quiet --user uv 2>/dev/null ||
        python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null ||
        python3 -m pip install --quiet uv || {
        echo "Could not install uv with pip: install uv, then run make again" >&2
        exit 1
    }
fi
exec python3 -m uv "$@"
