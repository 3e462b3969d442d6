#!/usr/bin/env bash
# CI for the Python client: install into a venv, build the native transport (the
# chanlayer-native extension, with maturin from PyPI), lint, check the generated stubs for
# drift, then run the tests against the real server binary on each transport: grpc.aio, the
# native one (HTTP/2 on the event loop's thread) and the native one with its I/O on a tokio
# thread (what TLS targets use).
#
# Environment:
#   CHANLAYER_VENV  the virtualenv to create or reuse (default: <repo>/.venv)
#   CHANLAYER_BIN   the server binary (default: <repo>/target/release/chanlayer, built if missing)
#   CARGO_TARGET_DIR  where cargo builds (default: <repo>/target, shared with the server so
#                   that the dependencies both use are built once)
#   CHANLAYER_CARGO_PROFILE  the extension's cargo profile (default: release; ./scripts/test
#                   uses ci, the server's release profile without cross-crate LTO)
#   PYTHON          the interpreter that creates the venv (default: python3)
#   PYTEST_ARGS     extra pytest arguments
#   TRANSPORTS      the transports to test (default: "grpc native native-threaded")
#   CHANLAYER_TEST_LISTEN  "unix" runs the suite against a server on a Unix domain socket
#                   (tests/test_unix_socket.py does on every run)
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

"$PY" -m pip install -q --disable-pip-version-check --upgrade pip

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
step "native transport: cargo fmt, clippy, unit tests (clients/python/native)"
# A member of the workspace: the root Cargo.lock pins its dependencies. The unit tests (the
# session state machine) link against libpython: maturin alone enables `extension-module`.
(cd "$REPO" && cargo fmt -p chanlayer-native -- --check &&
    cargo clippy -p chanlayer-native --all-targets --locked -- -D warnings &&
    cargo test -p chanlayer-native --profile "${CHANLAYER_CARGO_PROFILE:-release}" --locked)

profile=${CHANLAYER_CARGO_PROFILE:-release}
step "native transport: maturin build --profile $profile, pip install"
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.7,<2"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
started=$SECONDS
(cd "$CLIENT/native" && "$VENV/bin/maturin" build --profile "$profile" --locked --quiet --interpreter "$PY" --out "$wheels")
echo "built chanlayer-native in $((SECONDS - started)) s"

step "install chanlayer[test] (chanlayer-native from that wheel)"
# chanlayer depends on chanlayer-native where a wheel of it exists (see pyproject.toml): the
# one just built, found with --find-links.
"$PY" -m pip install -q --disable-pip-version-check --find-links "$wheels" -e "$CLIENT[test]"
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/*.whl

cd "$CLIENT"
step "ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

step "mypy"
"$PY" -m mypy src

step "generated stubs drift check (the pinned generator, in a venv of its own)"
# The generator pins an old protobuf (requirements-gen.txt), which the test venv must not
# share: the tests run on the newest grpcio and protobuf, the install tests on the floors.
GEN_VENV=${CHANLAYER_GEN_VENV:-$VENV-gen}
[ -x "$GEN_VENV/bin/python" ] || "$PYTHON" -m venv "$GEN_VENV"
"$GEN_VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-gen.txt
"$GEN_VENV/bin/python" scripts/gen_protos.py --check

if [ -z "${CHANLAYER_BIN:-}" ]; then
    export CHANLAYER_BIN="$REPO/target/release/chanlayer"
    if [ ! -x "$CHANLAYER_BIN" ]; then
        step "build the server (cargo build --release)"
        (cd "$REPO" && cargo build --release --locked)
    fi
fi

for transport in ${TRANSPORTS:-grpc native native-threaded}; do
    step "pytest, $transport transport (server: $CHANLAYER_BIN)"
    io=direct
    if [ "$transport" = native-threaded ]; then
        transport=native
        io=threaded
    fi
    # pytest exits 5 when it collected no test: with `set -e` that fails this script too.
    # shellcheck disable=SC2086
    CHANLAYER_TRANSPORT=$transport CHANLAYER_NATIVE_IO=$io \
        "$PY" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} tests
done
