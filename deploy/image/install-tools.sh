#!/usr/bin/env bash
# Installs what `make image` needs from Debian's packages, once: podman (builds with buildah's
# chroot isolation) and mmdebstrap (bootstraps the base images locally when the public ones
# cannot be pulled). Idempotent: does nothing when both are there.
#
#   bash deploy/image/install-tools.sh
set -euo pipefail

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-tools.sh: ${missing[*]} missing; install them (apt-get install ${missing[*]}) as root" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "install-tools.sh: ${missing[*]} missing and this is not a Debian-like system" >&2
    exit 1
}
echo "install-tools.sh: installing ${missing[*]} from Debian's packages..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
