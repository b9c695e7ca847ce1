#!/usr/bin/env bash
# The console's single-page app (services/console/web): npm packages from its package-lock.json
# installed once into .local/tools/console-web (npm ci; again only when the lock file changes,
# npm's cache in .local/cache/npm), the app type-checked and built into services/console/web/dist
# only when the lock file or a source changed (a hash of them is kept in dist/.source-hash).
#
#   bash services/console/build.sh          build if needed (what `make run` and the tests call)
#   bash services/console/build.sh test     the vitest unit tests of the components
#   bash services/console/build.sh tools    only install the packages; print the build dir
#
# The sources are copied into .local/build/console-web (node_modules linked there), so the
# source tree never holds node_modules; the browser tests run their script from that copy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SRC=services/console/web
TOOLS=.local/tools/console-web
WORK=.local/build/console-web
DIST="$ROOT/$SRC/dist"
MODE="${1:-build}"

command -v npm >/dev/null || { echo "console build: npm is not installed" >&2; exit 2; }
mkdir -p "$TOOLS" .local/cache/npm
if ! cmp -s "$SRC/package-lock.json" "$TOOLS/package-lock.json" || [ ! -x "$TOOLS/node_modules/.bin/vite" ]; then
    echo "console build: npm ci (the console's locked packages) into $TOOLS" >&2
    rm -rf "$TOOLS/node_modules" "$TOOLS/package-lock.json"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$TOOLS/"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --ignore-scripts --cache "$ROOT/.local/cache/npm" \
        --prefer-offline >/dev/null)
fi

sync_sources() {
    rm -rf "$WORK"
    mkdir -p "$WORK"
    tar -C "$SRC" --exclude=./node_modules --exclude=./dist -cf - . | tar -C "$WORK" -xf -
    ln -s "$ROOT/$TOOLS/node_modules" "$WORK/node_modules"
}

source_hash() {
    (cd "$SRC" && find . -path ./node_modules -prune -o -path ./dist -prune -o -type f -print \
        | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1
}

case "$MODE" in
    tools)
        sync_sources
        echo "$ROOT/$WORK"
        ;;
    test)
        sync_sources
        (cd "$WORK" && node_modules/.bin/vitest run)
        ;;
    build)
        hash="$(source_hash)"
        if [ -f "$DIST/index.html" ] && [ "$(cat "$DIST/.source-hash" 2>/dev/null)" = "$hash" ]; then
            echo "console build: $SRC/dist is up to date" >&2
            exit 0
        fi
        sync_sources
        (cd "$WORK" && node_modules/.bin/tsc --noEmit -p tsconfig.json \
            && node_modules/.bin/vite build --outDir "$DIST" --emptyOutDir --logLevel warn)
        echo "$hash" >"$DIST/.source-hash"
        echo "console build: built $SRC/dist" >&2
        ;;
    *)
        echo "usage: build.sh [build|test|tools]" >&2
        exit 2
        ;;
esac
