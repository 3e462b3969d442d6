#!/usr/bin/env bash
# The Node client (clients/node), as a fresh clone and as a user installs it:
#   1. in a copy of the tracked files only (no node_modules, no dist): `npm ci`, the drift check
#      of the generated protocol types, then `npm test` (its `pretest` compiles with tsc, strict)
#      against the real server binary (client tests, and the ws-gateway example as processes);
#   2. `npm pack` (its `prepack` builds), the tarball's contents checked, then `npm install
#      <tarball>` in an empty project, whose own `tsc --strict` type-checks against the shipped
#      declarations and which imports the client and talks to a running server.
# Only the npm registry is reached (for the packages in package-lock.json).
#
# Environment: CHANLAYER_BIN, the release server binary (default <repo>/target/release/chanlayer).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

step() { printf '\n== node client: %s\n' "$*"; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    step "install Node.js and npm (Debian packages)"
    apt-get update -q >/dev/null
    apt-get install -y -q nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "Node.js >= 20 is required, found $(node --version)" >&2
    exit 1
fi

export CHANLAYER_BIN="${CHANLAYER_BIN:-$root/target/release/chanlayer}"
work=$(mktemp -d "${TMPDIR:-/tmp}/chanlayer-node.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "fresh clone: the tracked files of clients/node and proto, as a checkout has them"
clone="$work/clone"
mkdir -p "$clone"
git ls-files -z --cached --others --exclude-standard -- clients/node proto |
    while IFS= read -r -d '' path; do [ -e "$path" ] && printf '%s\0' "$path"; done |
    tar --null -T - -cf - | tar -xf - -C "$clone"
cd "$clone/clients/node"
test ! -e node_modules && test ! -e dist

step "npm ci"
timeout 300 npm ci --no-audit --no-fund

step "generated types drift check"
timeout 60 node scripts/gen-proto.mjs --check

step "npm test (builds first; server: $CHANLAYER_BIN)"
timeout 420 npm test

step "npm pack"
mkdir "$work/pack"
timeout 180 npm pack --pack-destination "$work/pack" >"$work/pack.log" 2>&1 || {
    cat "$work/pack.log" >&2
    exit 1
}
tarball=$(ls "$work/pack"/chanlayer-client-*.tgz)
contents=$(tar -tzf "$tarball")
for wanted in package/package.json package/LICENSE package/README.md \
    package/dist/src/index.js package/dist/src/index.d.ts package/dist/src/layer.js \
    package/dist/src/layer.d.ts package/proto/chanlayer/v1/channel_layer.proto; do
    if ! grep -qxF "$wanted" <<<"$contents"; then
        echo "the packed tarball lacks $wanted" >&2
        exit 1
    fi
done
if grep -qE '^package/(dist/(test|examples)|node_modules)/' <<<"$contents"; then
    echo "the packed tarball carries tests, examples or node_modules" >&2
    exit 1
fi
echo "$(basename "$tarball"): $(wc -l <<<"$contents") files, the built JavaScript and its types"

step "npm install <tarball> in an empty project"
app="$work/app"
mkdir "$app"
printf '{ "name": "chanlayer-install-check", "private": true, "type": "module" }\n' >"$app/package.json"
cp scripts/smoke-installed.mjs scripts/smoke-types.ts "$app/"
(cd "$app" && timeout 300 npm install --no-audit --no-fund --prefer-offline "$tarball")
test ! -e "$app/node_modules/@chanlayer/client/dist/test"

step "the installed package: its types (tsc --strict) and a session with the server"
(cd "$app" && timeout 120 "$clone/clients/node/node_modules/.bin/tsc" --noEmit --strict \
    --target es2022 --module nodenext --moduleResolution nodenext --skipLibCheck smoke-types.ts)
(cd "$app" && timeout 60 node smoke-installed.mjs)
