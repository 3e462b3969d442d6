#!/usr/bin/env bash
# Interop test (tests/interop), on one chanlayer server and then on three chanlayer nodes in
# cluster mode (one per gateway, over a 3-server NATS cluster). Shared by the Django chat example on
# daphne, a Django runworker, the Node WebSocket gateway and the Rust WebSocket gateway. The
# Django side is the chat's room page in Debian's chromium (installed here if missing), driven
# by Playwright (playwright-core, which never downloads a browser); each gateway has WebSocket
# clients. Builds what it runs: the Node client and gateway (npm ci, tsc), the test's packages
# (npm ci), the Rust gateway (cargo, sharing <repo>/target), and checks the Python venv.
#
# Environment: CHANLAYER_BIN (release server binary), CHANLAYER_VENV (venv with chanlayer),
# CHROMIUM (default /usr/bin/chromium), INTEROP_LOGS (logs and screenshots; default a temporary
# directory, printed on failure), CHANLAYER_CARGO_PROFILE (the gateway's cargo profile; default
# release).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

step() { printf '\n== interop: %s\n' "$*"; }

export CHANLAYER_BIN="${CHANLAYER_BIN:-$root/target/release/chanlayer}"
export CHANLAYER_VENV="${CHANLAYER_VENV:-$root/.venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
profile=${CHANLAYER_CARGO_PROFILE:-release}
export RUST_GATEWAY_BIN="$CARGO_TARGET_DIR/$profile/chanlayer-ws-gateway"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -d clients/python/examples/chat ]; then
    echo "the Django chat example (clients/python/examples/chat) is missing" >&2
    exit 1
fi

"$root/scripts/install-chromium"

step "Python venv ($CHANLAYER_VENV): chanlayer, channels, daphne"
if [ ! -x "$CHANLAYER_VENV/bin/python" ]; then
    python3 -m venv "$CHANLAYER_VENV"
fi
if ! "$CHANLAYER_VENV/bin/python" -c 'import chanlayer, channels, daphne, django' 2>/dev/null; then
    timeout 600 "$CHANLAYER_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -e "clients/python[test]"
fi

step "Node client and gateway (npm ci, tsc)"
(cd clients/node && timeout 300 npm ci --no-audit --no-fund && rm -rf dist &&
    timeout 120 npx --no-install tsc -p tsconfig.json)
# The test's own packages: the Node client (a path dependency), ws and playwright-core.
(cd tests/interop && timeout 300 npm ci --no-audit --no-fund)

step "Rust gateway (cargo build --profile $profile)"
# A member of the workspace: the root Cargo.lock pins its dependencies.
timeout 900 cargo build -p chanlayer-ws-gateway --profile "$profile" --locked --quiet

test_pid=
cleanup() {
    [ -n "$test_pid" ] || return 0
    kill -TERM -- "-$test_pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$test_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Runs the test in a process group of its own: whatever it started is stopped with it.
run_interop() {
    setsid timeout -k 10 240 node --test --test-timeout=120000 tests/interop/interop.test.mjs &
    test_pid=$!
    local status=0
    wait "$test_pid" || status=$?
    cleanup
    test_pid=
    return "$status"
}

step "interop test: one chanlayer server"
run_interop

step "interop test: a chanlayer node per gateway, joined through a 3-server NATS cluster"
command -v nats-server >/dev/null || "$root/scripts/install-nats" >/dev/null
INTEROP_CLUSTER=1 run_interop
