#!/usr/bin/env bash
# Channel-layer benchmarks side by side: chanlayer, channels_redis (core and pubsub),
# channels-nats and Channels' InMemoryChannelLayer, through the public layer API.
#
#   bench/run.sh           full run: figures, report and plots in docs/benchmarks/ (about
#                          20 minutes on 2 cores, most of it the 1 000-client WebSocket part)
#   bench/run.sh --quick   correctness only, small counts (< 2 minutes; what CI runs)
#
# Installs redis-server and nats-server (Debian) and channels-redis, channels-nats,
# matplotlib and py-spy (PyPI, into the venv) when missing, starts redis, nats and a release
# chanlayer on free loopback ports, and stops them on exit.
#
# Environment:
#   CHANLAYER_VENV  the venv with the chanlayer client (default: <repo>/.venv)
#   CHANLAYER_BIN   the server binary (default: <repo>/target/release/chanlayer)
#   CHANLAYER_LOADGEN_BIN  the server's load generator (default: chanlayer-loadgen next to
#                   the server binary, built with `cargo build --release` when missing)
#   BENCH_OUT       where results go (default: docs/benchmarks, or a temp dir with --quick)
#   BENCH_ARGS      extra arguments of bench/layerbench.py (e.g. "--runs 5 --only sequential")
#   BENCH_PARTS     what to run (default "layers server ws": the layer scenarios, the server's
#                   load generator, the WebSocket end-to-end benchmark); the report uses the
#                   results found in the output directory
#   BENCH_SERVER_RUNS rounds of the server-alone figures (default 3; bench/serverbench.py)
#   BENCH_WS_CLIENTS  WebSocket clients in the room (default 1000)
#   BENCH_WS_LAYERS   layers of the WebSocket part (default all four; when set, results are
#                     appended to websocket.jsonl instead of replacing it)
#   BENCH_NATIVE      1 (default): build chanlayer's native transport when it is missing;
#                     0: install the layer without it when it is missing (grpc.aio);
#                     CHANLAYER_TRANSPORT=grpc forces grpc.aio either way
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${CHANLAYER_VENV:-$root/.venv}
bin=${CHANLAYER_BIN:-$root/target/release/chanlayer}
loadgen=${CHANLAYER_LOADGEN_BIN:-$(dirname "$bin")/chanlayer-loadgen}
quick=0
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n== bench: %s\n' "$*"; }

if ! command -v redis-server >/dev/null || ! command -v nats-server >/dev/null; then
    step "install redis-server and nats-server (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends redis-server nats-server
fi
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)

if [ ! -x "$venv/bin/python" ]; then
    step "create venv $venv"
    python3 -m venv "$venv"
fi
py=$venv/bin/python

if [ ! -x "$bin" ]; then
    step "build the server (cargo build --release)"
    (cd "$root" && cargo build --release --locked)
fi

# chanlayer's Python layer depends on its native transport, chanlayer-native, which is not
# on PyPI from a checkout: it is built here when it is missing (CI's Python suite installs
# it into the same venv), unless BENCH_NATIVE=0, which installs the layer without it.
step "install chanlayer, the peers, matplotlib and py-spy into $venv"
if "$py" -c 'import chanlayer_native' 2>/dev/null; then
    "$py" -m pip install -q --disable-pip-version-check -e "$root/clients/python" \
        -r "$root/bench/requirements.txt"
elif [ "${BENCH_NATIVE:-1}" = 1 ]; then
    step "build the native transport (maturin, clients/python/native)"
    "$py" -m pip install -q --disable-pip-version-check "maturin>=1.7,<2"
    wheels=$(mktemp -d)
    (cd "$root/clients/python/native" &&
        CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target} \
            "$venv/bin/maturin" build --release --locked --quiet --interpreter "$py" --out "$wheels")
    "$py" -m pip install -q --disable-pip-version-check --find-links "$wheels" \
        -e "$root/clients/python" -r "$root/bench/requirements.txt"
    rm -rf "$wheels"
else
    "$py" -m pip install -q --disable-pip-version-check --no-deps -e "$root/clients/python"
    # shellcheck disable=SC2046 # one requirement per word
    "$py" -m pip install -q --disable-pip-version-check -r "$root/bench/requirements.txt" \
        $("$py" "$root/clients/python/scripts/pure_requirements.py")
fi

ulimit -n 65536 2>/dev/null || true  # 1 000 WebSocket clients and their server
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    local port=$1 name=$2
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench: $name did not listen on 127.0.0.1:$port" >&2
    cat "$work/$name.log" >&2 || true
    return 1
}

redis_port=$(free_port)
nats_port=$(free_port)
chan_port=$(free_port)
step "start redis :$redis_port, nats :$nats_port, chanlayer :$chan_port (127.0.0.1)"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
"$nats_bin" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$chan_port" --metrics-listen off \
    >"$work/chanlayer.log" 2>&1 &
chan_pid=$!
pids+=("$chan_pid")
wait_port "$redis_port" redis
wait_port "$nats_port" nats
wait_port "$chan_port" chanlayer

if [ "$quick" = 1 ]; then
    out=${BENCH_OUT:-$root/test-artifacts/bench}
else
    out=${BENCH_OUT:-$root/docs/benchmarks}
fi
mkdir -p "$out"

parts=" ${BENCH_PARTS:-layers server ws} "
if [[ $parts == *" layers "* ]]; then
step "channel-layer scenarios ($([ $quick = 1 ] && echo quick || echo full))"
mode_args=()
[ "$quick" = 1 ] && mode_args=(--quick)
# shellcheck disable=SC2086
timeout 3600 "$py" "$root/bench/layerbench.py" "${mode_args[@]}" \
    --chanlayer "127.0.0.1:$chan_port" --redis "127.0.0.1:$redis_port" \
    --nats "nats://127.0.0.1:$nats_port" --out "$out/layers.json" ${BENCH_ARGS:-}
fi

if [[ $parts == *" server "* ]]; then
step "server-side load generator (chanlayer-loadgen)"
if [ ! -x "$loadgen" ]; then
    step "build the load generator (cargo build --release -p chanlayer-client)"
    (cd "$root" && cargo build --release --locked -p chanlayer-client --bin chanlayer-loadgen)
    loadgen=${CARGO_TARGET_DIR:-$root/target}/release/chanlayer-loadgen
fi
# The figures the server is held to, in interleaved rounds beside a pipelined redis-benchmark
# (bench/serverbench.py): throughput of 1 KiB messages, latency at 20 000 messages/s; then a
# GroupSend to 10 000 members and the memory of 100 000 pending receives plus 100 000 channels
# of 10 messages of 100 bytes.
server_args=(--runs "${BENCH_SERVER_RUNS:-3}")
[ "$quick" = 1 ] && server_args=(--runs 1 --quick)
"$py" "$root/bench/serverbench.py" "${server_args[@]}" --loadgen "$loadgen" \
    --target "http://127.0.0.1:$chan_port" --server-pid "$chan_pid" --redis-port "$redis_port" \
    --out "$out/server-bench.txt" --json "$out/server-bench.json"
fi

if [[ $parts == *" ws "* ]]; then
step "WebSocket end to end: the chat example on two daphne processes, one room"
# Each layer serves the room from two daphne processes (the members alternate between them,
# the sender is on the first): every broadcast crosses the layer to both. wsload.py measures
# latency and throughput, then the daphne processes' CPU per delivered message, then repeats
# the same messages under py-spy (a separate pass, so that its cost stays out of the figures
# above) for the layer's share of that CPU.
if [ "$quick" = 1 ]; then
    ws_args=(--clients 20 --procs 1 --latency-messages 3 --latency-runs 2 --burst-messages 3 \
        --timeout 120)
else
    ws_args=(--clients "${BENCH_WS_CLIENTS:-1000}" --procs 2 --latency-messages 30 --latency-runs 3 \
        --burst-messages 30 --timeout 900)
fi
chat=$root/clients/python/examples/chat
[ -n "${BENCH_WS_LAYERS:-}" ] || : >"$out/websocket.jsonl"
ws_failed=0
start_daphne() { # layer, port, log name; sets daphne_pid
    (cd "$chat" && BENCH_LAYER=$1 BENCH_CHANLAYER="127.0.0.1:$chan_port" \
        BENCH_REDIS="127.0.0.1:$redis_port" BENCH_NATS="nats://127.0.0.1:$nats_port" \
        DJANGO_SETTINGS_MODULE=bench_settings PYTHONPATH="$chat:$root/bench/e2e" \
        exec "$venv/bin/daphne" -b 127.0.0.1 -p "$2" --websocket_connect_timeout 600 \
        mysite.asgi:application \
        >"$work/$3.log" 2>&1) &
    daphne_pid=$!
    pids+=("$daphne_pid")
}
for layer in ${BENCH_WS_LAYERS:-chanlayer redis-core redis-pubsub nats}; do
    redis-cli -p "$redis_port" flushall >/dev/null
    ws_ports=() ws_pids=() ws_args_gw=()
    for gw in 1 2; do
        ws_port=$(free_port)
        start_daphne "$layer" "$ws_port" "daphne-$layer-$gw"
        ws_ports+=("$ws_port")
        ws_pids+=("$daphne_pid")
        ws_args_gw+=(--url "ws://127.0.0.1:$ws_port/ws/chat/bench/" --daphne-pid "$daphne_pid")
    done
    for gw in 1 2; do
        wait_port "${ws_ports[$((gw - 1))]}" "daphne-$layer-$gw"
    done
    printf '%s: ' "$layer"
    if figures=$(timeout 1200 "$py" "$root/bench/e2e/wsload.py" "${ws_args[@]}" \
        "${ws_args_gw[@]}" --profile-pass --layer "$layer" \
        2>"$work/wsload-$layer.err"); then
        echo "$figures"
        printf '{"layer": "%s", "figures": %s}\n' "$layer" "$figures" >>"$out/websocket.jsonl"
    else
        # A peer's failure is a finding of the report; chanlayer's fails the command.
        crashes=$(grep -h "Exception inside application" "$work/daphne-$layer-"[12].log | wc -l || true)
        reason=$(tail -1 "$work/wsload-$layer.err" | tr -d '"\\' | cut -c1-150)
        echo "FAILED ($crashes consumers crashed): $reason"
        tail -20 "$work/wsload-$layer.err" >&2
        grep -h -m3 -A1 "Exception inside application" "$work/daphne-$layer-"[12].log >&2 || true
        printf '{"layer": "%s", "error": "%s consumers crashed; %s"}\n' "$layer" "$crashes" \
            "$reason" >>"$out/websocket.jsonl"
        [ "$layer" = chanlayer ] && ws_failed=1
    fi
    kill "${ws_pids[@]}"
    for pid in "${ws_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
done
fi

step "report"
if [ "${ws_failed:-0}" = 1 ]; then
    echo "bench: the WebSocket benchmark failed on chanlayer" >&2
    exit 1
fi
if [ ! -f "$out/layers.json" ]; then
    # A run of other parts only (BENCH_PARTS without "layers") into a directory without
    # layer results: its figures are in the files above, with nothing to tabulate.
    echo "bench: no $out/layers.json to report on; figures in $out"
    exit 0
fi
"$py" "$root/bench/report.py" --results "$out/layers.json" \
    --server "$out/server-bench.txt" --websocket "$out/websocket.jsonl" --out "$out" $([ $quick = 1 ] && echo --quick)
if [ -f "$root/docs/benchmarks/INTRO.md" ] && [ "$out" = "$root/docs/benchmarks" ]; then
    # docs/benchmarks/README.md: the hand-written method and analysis, then these figures.
    cat "$out/INTRO.md" "$out/ANALYSIS.md" "$out/results.md" >"$out/README.md"
fi
echo "bench: report in $out/results.md"
