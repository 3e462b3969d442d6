#!/usr/bin/env bash
# The benchmark harness in quick mode (bench/run.sh --quick): every scenario on every backend
# (chanlayer, channels_redis core and pubsub, channels-nats, InMemory) with small counts,
# checking what was received, then a few hundred trips of bench/roundtrip.py per placement.
# Asserts correctness only, never timings. Under 2 minutes.
#
# Environment: CHANLAYER_BIN (release server binary), CHANLAYER_VENV (venv with chanlayer).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${CHANLAYER_VENV:-$root/.venv}
timeout 600 "$root/bench/run.sh" --quick
# The round-trip tool, a few hundred trips per placement: it runs and every trip comes back.
placements=(--placement free --placement same)
if [ "$(nproc)" -ge 2 ]; then placements+=(--placement split); fi
timeout 120 "$venv/bin/python" "$root/bench/roundtrip.py" --runs 1 --trips 300 "${placements[@]}"
# The harness itself stays lint-clean (ruff comes with the client's test extra).
"$venv/bin/python" -m ruff check --config "$root/bench/ruff.toml" "$root/bench"
"$venv/bin/python" -m ruff format --check --config "$root/bench/ruff.toml" "$root/bench"
