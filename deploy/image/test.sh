#!/usr/bin/env bash
# make image-test: builds the image (make image), then starts every service from it as the
# chart does (tests/deploy/test_image.py) against the stack whose settings are exported (make
# test exports the test stack's; by hand: `set -a; . .local/test/env; set +a`).
#
# Needs root and podman: without them it prints why and exits 0 (nothing was tested, and it
# says so); `bash deploy/image/install-tools.sh` installs podman and mmdebstrap from Debian.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

why=""
if [ "$(id -u)" -ne 0 ]; then
    why="it needs root (podman image mount, chroot into the image)"
elif ! command -v podman >/dev/null 2>&1; then
    why="podman is not installed (bash deploy/image/install-tools.sh installs it from Debian)"
fi
if [ -n "$why" ]; then
    echo "image-test: SKIPPED, the container image was neither built nor started: $why"
    exit 0
fi

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
export IMAGE="${IMAGE:-localhost/ecomops:$VERSION}"

start=$SECONDS
bash deploy/image/build.sh
built=$((SECONDS - start))

start=$SECONDS
ECOMOPS_IMAGE="$IMAGE" .venv/bin/pytest -q tests/deploy/test_image.py "$@"
tested=$((SECONDS - start))

size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
printf 'image-test: %s, %s MB uncompressed; build %ss, start-up tests %ss\n' \
    "$IMAGE" "$((size / 1000000))" "$built" "$tested"
