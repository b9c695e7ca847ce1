#!/usr/bin/env bash
# The OpenAPI documents as a front end uses them: `ecomops openapi` writes every service's
# document (and the combined one), openapi-typescript generates TypeScript types from each,
# and tsc --noEmit type-checks clients/typescript/src against them.
#
# The npm packages come from clients/typescript/package-lock.json (npm ci), installed once into
# .local/tools/ts-client (again only when the lock file changes), npm's cache in .local/cache/npm.
#
#   bash scripts/ts_client_check.sh [BUILD_DIR]    (default .local/build/ts-client)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SRC=clients/typescript
TOOLS=.local/tools/ts-client
BUILD="${1:-.local/build/ts-client}"

command -v npm >/dev/null || { echo "ts_client_check.sh: npm is not installed" >&2; exit 2; }
mkdir -p "$TOOLS" .local/cache/npm
if ! cmp -s "$SRC/package-lock.json" "$TOOLS/package-lock.json" || [ ! -x "$TOOLS/node_modules/.bin/tsc" ]; then
    echo "ts_client_check.sh: installing $(jq -r '.devDependencies | to_entries | map(.key+"@"+.value) | join(", ")' "$SRC/package.json" 2>/dev/null || echo 'the locked packages') into $TOOLS"
    rm -rf "$TOOLS/node_modules" "$TOOLS/package-lock.json"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$TOOLS/"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --ignore-scripts --cache "$ROOT/.local/cache/npm" --prefer-offline >/dev/null)
fi

rm -rf "$BUILD"
mkdir -p "$BUILD/generated" "$BUILD/openapi"
cp -r "$SRC/src" "$SRC/tsconfig.json" "$BUILD/"
ln -s "$(cd "$TOOLS" && pwd)/node_modules" "$BUILD/node_modules"  # imports of openapi-fetch
.venv/bin/ecomops openapi --output "$BUILD/openapi" >/dev/null
pids=()
for doc in "$BUILD"/openapi/*.json; do
    name="$(basename "$doc" .json)"
    "$TOOLS/node_modules/.bin/openapi-typescript" "$doc" -o "$BUILD/generated/$name.ts" \
        >"$BUILD/generated/$name.log" 2>&1 &
    pids+=("$!")
done
for pid in "${pids[@]}"; do
    wait "$pid" || { cat "$BUILD"/generated/*.log >&2; exit 1; }
done
"$TOOLS/node_modules/.bin/tsc" --noEmit -p "$BUILD/tsconfig.json"
echo "ts_client_check.sh: types generated for $(ls "$BUILD/generated" | sed 's/\.ts$//' | tr '\n' ' ')and $SRC/src type-checked"
