#!/usr/bin/env bash
# make image: builds deploy/Dockerfile with podman (buildah's chroot isolation, so no OCI
# runtime is needed) and prints the image's size.
#
#   bash deploy/image/build.sh                         # local base images (mmdebstrap), tag ecomops:<version>
#   PYTHON_IMAGE=python:3.11.13-slim-bookworm UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9 \
#       bash deploy/image/build.sh                     # the public base images, where they can be pulled
#
# IMAGE overrides the tag. If SSL_CERT_FILE (or ECOMOPS_BUILD_CA_BUNDLE) names a CA bundle, it is
# passed as the build secret `ca_bundle` (used by uv sync, never stored in the image).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PODMAN="${PODMAN:-podman}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
IMAGE="${IMAGE:-localhost/ecomops:$VERSION}"

bash deploy/image/install-tools.sh
# The console's page goes into the image when npm can build it (the Dockerfile copies it).
bash services/console/build.sh || echo "build.sh: the console's page was not built; the image serves its API only" >&2
if [ -z "${PYTHON_IMAGE:-}" ] || [ -z "${UV_IMAGE:-}" ]; then
    # shellcheck disable=SC2046
    eval "$(PODMAN="$PODMAN" bash deploy/image/base-images.sh)"
fi

args=(
    build --isolation=chroot --network=host
    -f deploy/Dockerfile
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
    --build-arg "UV_IMAGE=$UV_IMAGE"
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    -t "$IMAGE"
)
ca="${ECOMOPS_BUILD_CA_BUNDLE:-${SSL_CERT_FILE:-}}"
if [ -n "$ca" ] && [ -s "$ca" ]; then
    args+=(--secret "id=ca_bundle,src=$ca")
fi

echo "build.sh: $PODMAN ${args[*]} . (bases: $PYTHON_IMAGE, $UV_IMAGE)" >&2
start=$SECONDS
"$PODMAN" "${args[@]}" .
# The image the tag pointed at before is dangling now: drop it (not the layer cache).
"$PODMAN" image prune -f --filter label=org.opencontainers.image.title=ecomops >/dev/null || true
size="$("$PODMAN" image inspect --format '{{.Size}}' "$IMAGE")"
printf 'build.sh: %s built in %ss, %s MB (%s bytes uncompressed)\n' \
    "$IMAGE" "$((SECONDS - start))" "$((size / 1000000))" "$size"
