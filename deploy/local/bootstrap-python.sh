#!/usr/bin/env bash
# Creates the project's virtualenv (.venv) from uv.lock, exactly (uv sync --frozen).
# Uses the uv on PATH if there is one; otherwise installs a pinned uv from PyPI into
# .local/tools/uv (a plain venv). uv's cache lives in .local/cache/uv.
#
#   bash deploy/local/bootstrap-python.sh
set -euo pipefail

UV_VERSION="0.13.9"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_VENV="$ROOT/.local/tools/uv"

die() { echo "bootstrap-python.sh: $*" >&2; exit 1; }

find_uv() {
    local uv
    # a uv on PATH that actually runs (a pyenv shim without a uv behind it does not)
    if uv="$(command -v uv 2>/dev/null)" && "$uv" --version >/dev/null 2>&1; then
        echo "$uv"
        return 0
    fi
    uv="$TOOLS_VENV/bin/uv"
    if [[ -x "$uv" ]] && [[ "$("$uv" --version 2>/dev/null)" == "uv $UV_VERSION"* ]]; then
        echo "$uv"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH"
    echo "bootstrap-python.sh: installing uv $UV_VERSION into ${TOOLS_VENV#"$ROOT"/} (first time)..." >&2
    rm -rf "$TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV" >&2 || die "python3 -m venv failed (is python3-venv installed?)"
    "$TOOLS_VENV/bin/pip" install --quiet "uv==$UV_VERSION" >&2 || die "pip could not install uv==$UV_VERSION"
    echo "$uv"
}

UV="$(find_uv)"
echo "bootstrap-python.sh: using $UV ($("$UV" --version))"

export UV_CACHE_DIR="$ROOT/.local/cache/uv"
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python 3.11; never fetch one
cd "$ROOT"
"$UV" sync --frozen || die "uv sync --frozen failed (is uv.lock in sync with pyproject.toml? run 'uv lock')"
echo "bootstrap-python.sh: .venv ready ($("$ROOT/.venv/bin/python" --version))"
