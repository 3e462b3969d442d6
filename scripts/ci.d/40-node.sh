#!/usr/bin/env bash
# The Node client (clients/node): install with npm ci, check the generated protocol types for
# drift, compile with tsc (strict), then run node's test runner against the real server binary
# (client tests, and the ws-gateway example as processes).
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
cd clients/node

step "npm ci"
timeout 300 npm ci --no-audit --no-fund

step "generated types drift check"
timeout 60 node scripts/gen-proto.mjs --check

step "tsc (strict)"
rm -rf dist
timeout 120 npx --no-install tsc -p tsconfig.json

step "node --test (server: $CHANLAYER_BIN)"
timeout 300 node --test --test-timeout=60000 dist/test/*.test.js
