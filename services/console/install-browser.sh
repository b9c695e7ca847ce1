#!/usr/bin/env bash
# Installs what the console's browser tests need from Debian's packages, once: chromium
# (/usr/bin/chromium, driven by playwright-core; browser downloads from other hosts are not
# possible here). Idempotent: does nothing when it is there.
#
#   bash services/console/install-browser.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh: chromium missing; install it (apt-get install chromium) as root" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
    echo "install-browser.sh: chromium missing and this is not a Debian-like system" >&2
    exit 1
}
echo "install-browser.sh: installing chromium from Debian's packages..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
