#!/usr/bin/env bash
# The chat example (clients/python/examples/chat) end to end: two daphne processes on one
# chanlayer server, then on two chanlayer nodes joined through a 3-server NATS cluster
# (nats-server from scripts/install-nats), driven by Playwright in Debian's chromium
# (installed here if missing; Playwright never downloads a browser). Logs and screenshots
# go to test-artifacts/chat.
#
# Environment: CHANLAYER_BIN (release server binary), CHANLAYER_VENV (venv with chanlayer).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
example=$root/clients/python/examples/chat
export CHANLAYER_BIN=${CHANLAYER_BIN:-$root/target/release/chanlayer}
venv=${CHANLAYER_VENV:-$root/.venv}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHAT_ARTIFACTS=${CHAT_ARTIFACTS:-$root/test-artifacts/chat}

step() { printf '\n== chat e2e: %s\n' "$*"; }

"$root/scripts/install-chromium"

if [ ! -x "$venv/bin/python" ]; then
    step "create venv $venv"
    python3 -m venv "$venv"
fi
py=$venv/bin/python

step "install the example's test requirements"
"$py" -m pip install -q --disable-pip-version-check -e "$root/clients/python" \
    -r "$example/requirements-test.txt"

if [ ! -x "$CHANLAYER_BIN" ]; then
    step "build the server (cargo build --release)"
    (cd "$root" && cargo build --release --locked)
fi

step "pytest (server: $CHANLAYER_BIN)"
rm -rf "$CHAT_ARTIFACTS"
cd "$example"
"$py" -m pytest -q
echo "screenshot: $CHAT_ARTIFACTS/chat.png"
