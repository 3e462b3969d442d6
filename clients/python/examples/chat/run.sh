#!/usr/bin/env bash
# Start chanlayer and the chat example, then print the URL to open.
#
# Builds the server if needed (cargo build --release), installs the Python client and the
# example into a venv, starts `chanlayer serve` (or uses one already listening on its port)
# and daphne. Ctrl-C stops what it started.
#
# Environment:
#   CHAT_PORT       the HTTP port of the chat (default 8000)
#   CHANLAYER_PORT  the gRPC port of chanlayer (default 50051)
#   CHAT_VENV       the virtualenv to create or reuse (default: <repo>/.venv)
#   CHANLAYER_BIN   the server binary (default: <repo>/target/release/chanlayer)
#   PYTHON          the interpreter that creates the venv (default: python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
venv=${CHAT_VENV:-$repo/.venv}
chat_port=${CHAT_PORT:-8000}
chanlayer_port=${CHANLAYER_PORT:-50051}
bin=${CHANLAYER_BIN:-$repo/target/release/chanlayer}
python=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_listening() { # port, name, pid
    for _ in $(seq 300); do
        listening "$1" && return 0
        kill -0 "$3" 2>/dev/null || { echo "$2 exited; see the lines above" >&2; return 1; }
        sleep 0.1
    done
    echo "$2 is not listening on port $1 after 30 s" >&2
    return 1
}

if [ ! -x "$bin" ]; then
    if ! command -v cargo >/dev/null; then
        echo "chanlayer is built with cargo: install Rust from https://rustup.rs" >&2
        exit 1
    fi
    say "build chanlayer (cargo build --release; the first build takes a few minutes)"
    (cd "$repo" && cargo build --release --locked)
fi

if [ ! -x "$venv/bin/python" ]; then
    say "create the virtualenv $venv"
    if ! "$python" -m venv "$venv"; then
        # Debian and Ubuntu ship venv in a package of its own.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y -q python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            echo "install python3-venv (sudo apt-get install python3-venv) and retry" >&2
            exit 1
        fi
    fi
fi
py=$venv/bin/python
say "install the chanlayer client and the example's requirements"
# The layer depends on its native transport (chanlayer-native): from the wheels scripts/dist
# built into dist/, else (a checkout with no wheels) the layer goes without it, on grpc.aio.
if "$py" -c 'import chanlayer_native' 2>/dev/null || ls "$repo"/dist/chanlayer_native-*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --disable-pip-version-check --find-links "$repo/dist" \
        -e "$repo/clients/python" -r "$here/requirements.txt"
else
    "$py" -m pip install -q --disable-pip-version-check --no-deps -e "$repo/clients/python"
    # shellcheck disable=SC2046 # one requirement per word
    "$py" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" \
        $("$py" "$repo/clients/python/scripts/pure_requirements.py")
fi

pids=()
stop() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

if listening "$chanlayer_port"; then
    say "using the chanlayer server already listening on 127.0.0.1:$chanlayer_port"
else
    say "start chanlayer on 127.0.0.1:$chanlayer_port"
    if [ -z "${CHANLAYER_METRICS_LISTEN:-}" ] && listening 9464; then
        # Another server holds the default metrics port: this one goes without metrics.
        export CHANLAYER_METRICS_LISTEN=off
    fi
    "$bin" serve --listen "127.0.0.1:$chanlayer_port" &
    pids+=($!)
    wait_listening "$chanlayer_port" chanlayer "$!"
fi

if listening "$chat_port"; then
    echo "port $chat_port is taken: set CHAT_PORT to another port" >&2
    exit 1
fi
say "start the chat (daphne) on 127.0.0.1:$chat_port"
cd "$here"
CHANLAYER_TARGET="127.0.0.1:$chanlayer_port" "$py" -m daphne -b 127.0.0.1 -p "$chat_port" \
    mysite.asgi:application &
pids+=($!)
wait_listening "$chat_port" daphne "$!"

cat <<MSG

    The chat is ready: http://127.0.0.1:$chat_port/chat/lobby/

    Open it in two windows and type. Another room: http://127.0.0.1:$chat_port/chat/<name>/
    Ctrl-C stops it.

MSG
wait -n "${pids[@]}"
