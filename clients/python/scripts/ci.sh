#!/usr/bin/env bash
# CI for the Python client: install into a venv, lint, check the generated stubs for drift,
# then run the tests against the real server binary.
#
# Environment:
#   CHANLAYER_VENV  the virtualenv to create or reuse (default: <repo>/.venv)
#   CHANLAYER_BIN   the server binary (default: <repo>/target/release/chanlayer, built if missing)
#   PYTHON          the interpreter that creates the venv (default: python3)
#   PYTEST_ARGS     extra pytest arguments
set -euo pipefail

CLIENT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "$CLIENT/../.." && pwd)
VENV=${CHANLAYER_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}

step() { printf '\n== python client: %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    step "create venv $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian's python3 ships venv separately.
        apt-get install -y -q python3-venv >/dev/null
        "$PYTHON" -m venv "$VENV"
    fi
fi
PY="$VENV/bin/python"

step "install chanlayer[test]"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
"$PY" -m pip install -q --disable-pip-version-check -e "$CLIENT[test]"

cd "$CLIENT"
step "ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

step "mypy"
"$PY" -m mypy src

step "generated stubs drift check"
"$PY" scripts/gen_protos.py --check

if [ -z "${CHANLAYER_BIN:-}" ]; then
    export CHANLAYER_BIN="$REPO/target/release/chanlayer"
    if [ ! -x "$CHANLAYER_BIN" ]; then
        step "build the server (cargo build --release)"
        (cd "$REPO" && cargo build --release --locked)
    fi
fi

step "pytest (server: $CHANLAYER_BIN)"
# pytest exits 5 when it collected no test: with `set -e` that fails this script too.
# shellcheck disable=SC2086
"$PY" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} tests
