#!/usr/bin/env bash
# Makes the two base images deploy/Dockerfile builds FROM exist in the local container store,
# without pulling from a container registry:
#
#   python  Debian bookworm with Debian's python3.11 (mmdebstrap from Debian's packages), the
#           stand-in for python:3.11-slim-bookworm (which keeps Python in /usr/local instead)
#   uv      a scratch image holding the pinned uv binary (from PyPI's uv wheel), the stand-in
#           for ghcr.io/astral-sh/uv:<version>
#
# Prints the two references as shell assignments (PYTHON_IMAGE=... UV_IMAGE=...). The rootfs
# tarballs are cached under .local/cache/image, keyed by their recipe; an image already in the
# store is reused. Where the public images can be pulled, skip this and build with
# `make image PYTHON_IMAGE=python:3.11.13-slim-bookworm UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$ROOT/.local/cache/image"
PODMAN="${PODMAN:-podman}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What python:3.11-slim has besides the interpreter: CA certificates, /etc/services and
# friends, and useradd/groupadd (passwd) for the image's non-root user.
PACKAGES=(python3.11 ca-certificates netbase passwd)
UV_VERSION="$(sed -n 's/^ARG UV_IMAGE=.*uv:\([0-9.]*\)$/\1/p' "$ROOT/deploy/Dockerfile")"

log() { echo "base-images.sh: $*" >&2; }
mkdir -p "$CACHE"

# ---- python: mmdebstrap, minbase + the packages above, docs and locales left out ----
recipe="$SUITE ${PACKAGES[*]} minbase nodocs v1"
key="$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
PYTHON_IMAGE="localhost/ecomops-base/python:3.11-$SUITE-$key"
if ! "$PODMAN" image exists "$PYTHON_IMAGE"; then
    tarball="$CACHE/python-3.11-$SUITE-$key.tar"
    if [ ! -s "$tarball" ]; then
        log "bootstrapping Debian $SUITE with ${PACKAGES[*]} (mmdebstrap, first time)..."
        include="$(IFS=,; echo "${PACKAGES[*]}")"
        mmdebstrap --quiet --variant=minbase --format=tar --include="$include" \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
            "$SUITE" "$tarball.part" "$MIRROR"
        mv "$tarball.part" "$tarball"
    fi
    log "importing $PYTHON_IMAGE"
    "$PODMAN" import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3.11"]' \
        "$tarball" "$PYTHON_IMAGE" >/dev/null
fi

# ---- uv: the binary of the pinned uv wheel from PyPI, alone in a scratch image ----
UV_IMAGE="localhost/ecomops-base/uv:$UV_VERSION"
if ! "$PODMAN" image exists "$UV_IMAGE"; then
    venv="$CACHE/uv-$UV_VERSION"
    if [ ! -x "$venv/bin/uv" ] || [[ "$("$venv/bin/uv" --version)" != "uv $UV_VERSION"* ]]; then
        log "installing uv $UV_VERSION from PyPI into ${venv#"$ROOT"/}"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "uv==$UV_VERSION"
    fi
    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT
    cp "$venv/bin/uv" "$venv/bin/uvx" "$stage/"
    log "importing $UV_IMAGE"
    tar -C "$stage" -cf - uv uvx | "$PODMAN" import --quiet - "$UV_IMAGE" >/dev/null
fi

echo "PYTHON_IMAGE=$PYTHON_IMAGE"
echo "UV_IMAGE=$UV_IMAGE"
