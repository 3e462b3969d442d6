#!/usr/bin/env bash
# TCP loopback against a Unix domain socket, side by side (docs/benchmarks/UNIX_SOCKETS.md).
#
# Starts two servers with the same flags, one on a free loopback port and one on a Unix
# socket in a temporary directory, then runs each measurement ROUNDS times, alternating
# the two (TCP first in odd rounds, the socket first in even ones), and prints every run
# and the medians:
#   1. chanlayer-loadgen throughput: 4 sender/receiver session pairs, 200 000 messages of
#      1 KiB, as fast as they go (messages/s);
#   2. chanlayer-loadgen latency: 1 pair, 20 000 messages of 100 B evenly paced at
#      5 000/s (send-to-delivery p50 and p99);
#   3. bench/layerbench.py "sequential send->receive" through the Python layer on the
#      native transport (send to a new_channel(), then receive it, 2 000 times: messages/s
#      and round-trip p50/p99).
#
# Environment: CHANLAYER_BIN and LOADGEN_BIN (default target/release/...), PYTHON (a venv
# with chanlayer and chanlayer-native installed; default .venv/bin/python), ROUNDS (5),
# MEASUREMENTS (default "throughput latency sequential": a subset runs only those), SCALE
# (layerbench's --scale for the sequential runs, default 1: 2 000 round trips).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${CHANLAYER_BIN:-$root/target/release/chanlayer}
LOADGEN=${LOADGEN_BIN:-$root/target/release/chanlayer-loadgen}
PY=${PYTHON:-$root/.venv/bin/python}
ROUNDS=${ROUNDS:-5}
MEASUREMENTS=${MEASUREMENTS:-throughput latency sequential}
SCALE=${SCALE:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/chanlayer-uds-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sock="$work/chanlayer.sock"
flags=(--metrics-listen off --max-queued-bytes-per-namespace 1073741824)
"$BIN" serve --listen "127.0.0.1:$port" "${flags[@]}" >"$work/tcp.log" 2>&1 &
pids+=($!)
"$BIN" serve --listen "unix:$sock" "${flags[@]}" >"$work/unix.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    if "$BIN" status --target "127.0.0.1:$port" >/dev/null 2>&1 &&
        "$BIN" status --target "unix:$sock" >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done

declare -A loadgen_target=([tcp]="http://127.0.0.1:$port" [unix]="unix:$sock")
declare -A layer_target=([tcp]="127.0.0.1:$port" [unix]="unix:$sock")

run_one() { # kind measurement
    local kind=$1 what=$2 out
    case $what in
    throughput)
        out=$("$LOADGEN" --target "${loadgen_target[$kind]}" --pairs 4 --messages 200000 --size 1024)
        awk -v k="$kind" '/messages\/s/ { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^messages\/s/) { print "throughput", k, $i; exit } }' <<<"$out"
        ;;
    latency)
        out=$("$LOADGEN" --target "${loadgen_target[$kind]}" --pairs 1 --messages 20000 --size 100 --rate 5000 --pacing even)
        sed -n 's/.*send-to-delivery latency: p50 \([0-9.]*\) us, p90 [0-9.]* us, p99 \([0-9.]*\) us.*/\1 \2/p' <<<"$out" |
            awk -v k="$kind" '{ print "latency_p50_us", k, $1; print "latency_p99_us", k, $2 }'
        ;;
    sequential)
        CHANLAYER_TRANSPORT=native "$PY" bench/layerbench.py --chanlayer "${layer_target[$kind]}" \
            --redis unused --nats unused --backends chanlayer --only sequential --runs 1 --scale "$SCALE" \
            --out "$work/seq-$kind.json" >/dev/null
        "$PY" - "$work/seq-$kind.json" "$kind" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
m = data["scenarios"][0]["backends"]["chanlayer"]["median"]
assert data["chanlayer_transport"] == "native", data["chanlayer_transport"]
for key, value in sorted(m.items()):
    print(f"sequential_{key}", sys.argv[2], f"{value:.6g}")
EOF
        ;;
    esac
}

results="$work/results.txt"
: >"$results"
for what in $MEASUREMENTS; do
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="tcp unix"; else order="unix tcp"; fi
        for kind in $order; do
            run_one "$kind" "$what" | tee -a "$results" | sed "s/^/[$what round $round] /"
        done
    done
done

echo
echo "medians over $ROUNDS interleaved runs:"
"$PY" - "$results" <<'EOF'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    metric, kind, value = line.split()
    runs[(metric, kind)].append(float(value))
metrics = sorted({m for m, _ in runs})
print(f"{'metric':32} {'tcp loopback':>14} {'unix socket':>14} {'unix/tcp':>9}")
for metric in metrics:
    tcp, uds = statistics.median(runs[(metric, "tcp")]), statistics.median(runs[(metric, "unix")])
    print(f"{metric:32} {tcp:14.4g} {uds:14.4g} {uds / tcp:9.3f}")
EOF
