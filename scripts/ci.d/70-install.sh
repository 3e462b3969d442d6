#!/usr/bin/env bash
# The install itself, as a user without a Rust toolchain has it: scripts/dist builds the
# wheels, the sdists and the tarball (profile ci, the Node package left to 40-node.sh), then
# each check runs in a fresh venv with PATH reduced to /usr/bin:/bin and the venv (no cargo,
# no rustc):
#   (a) the server wheel: `chanlayer --version`, and `chanlayer serve` answers health checks;
#       the tarball's binary says the same version;
#   (b) `pip install chanlayer` from dist/ brings the native transport (chanlayer-native's
#       manylinux abi3 wheel): layer.transport == "native", and the smoke test
#       (clients/python/scripts/smoke_installed.py: send, receive, group_send, flush) passes
#       against that server;
#   (c) the pure wheel alone (no chanlayer-native) runs on grpc.aio, with a WARNING that the
#       native transport was expected on this platform;
#   (d) a venv pinned to the floors of grpcio and protobuf (pyproject.toml) passes the smoke
#       test on both transports.
#   (e) the chat example runs on the layer installed in (b), in Chromium.
# The layer's other dependencies come from PyPI; chanlayer's own packages only from dist/.
#
# Environment: CARGO_TARGET_DIR (shared with the suite's builds); CHANLAYER_INSTALL_DIST, a
# dist/ already built by scripts/dist, to test instead of building one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

step() { printf '\n== install: %s\n' "$*"; }
started=$SECONDS

# The floors the layer declares, tested in (d).
grpcio_floor=$(sed -n 's/^ *"grpcio>=\([0-9.]*\)",$/\1/p' clients/python/pyproject.toml)
protobuf_floor=$(sed -n 's/^ *"protobuf>=\([0-9.]*\)",$/\1/p' clients/python/pyproject.toml)
[ -n "$grpcio_floor" ] && [ -n "$protobuf_floor" ]

work=$(mktemp -d "${TMPDIR:-/tmp}/chanlayer-install.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${CHANLAYER_INSTALL_DIST:-}" ]; then
    dist=$CHANLAYER_INSTALL_DIST
else
    dist=$work/dist
    # --host: linked against this machine's glibc by the host toolchain, reusing the suite's
    # ci-profile builds; the full build (zig, manylinux2014, a second tree of every
    # dependency) would add more than ten minutes. The wheels are packaged the same way.
    step "scripts/dist --profile ci --host --no-node"
    built=$SECONDS
    scripts/dist --profile ci --host --no-node --out "$dist"
    echo "artifacts built in $((SECONDS - built)) s"
fi
(cd "$dist" && sha256sum --quiet -c SHA256SUMS)
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' clients/python/src/chanlayer/_version.py)
for wanted in "chanlayer_native-$version-cp310-abi3-manylinux*_x86_64.whl" \
    "chanlayer_native-$version.tar.gz" "chanlayer-$version-py3-none-any.whl" \
    "chanlayer-$version.tar.gz" "chanlayer_server-$version-py3-none-manylinux*_x86_64.whl" \
    "chanlayer-$version-x86_64-linux-gnu.tar.gz"; do
    # shellcheck disable=SC2086 # the pattern is globbed on purpose
    ls "$dist"/$wanted >/dev/null
done

# The interpreter the venvs are made from (a real path: the reduced PATH has no shims).
python=$(python3 -c 'import sys; print(sys.executable)')
smoke=$root/clients/python/scripts/smoke_installed.py
# Runs a command with PATH reduced to the venv and /usr/bin:/bin.
in_venv() {
    local venv=$1
    shift
    env -u PYTHONPATH -u VIRTUAL_ENV PATH="$venv/bin:/usr/bin:/bin" "$@"
}
new_venv() {
    "$python" -m venv "$work/$1"
    in_venv "$work/$1" python -m pip install -q --disable-pip-version-check --upgrade pip
    if in_venv "$work/$1" sh -c 'command -v cargo || command -v rustc'; then
        echo "cargo or rustc is on the reduced PATH" >&2
        exit 1
    fi
}
pip_in() {
    local venv=$1
    shift
    in_venv "$work/$venv" python -m pip install -q --disable-pip-version-check "$@"
}

step "(a) the server wheel: chanlayer on PATH"
new_venv server
pip_in server --no-index --find-links "$dist" chanlayer-server
[ "$(in_venv "$work/server" sh -c 'command -v chanlayer')" = "$work/server/bin/chanlayer" ]
got=$(in_venv "$work/server" chanlayer --version)
[ "$got" = "chanlayer $version" ] || {
    echo "chanlayer --version printed '$got'" >&2
    exit 1
}
echo "$got"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
metrics=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target=127.0.0.1:$port
# Not through in_venv (a function runs in a subshell of its own): env execs the server, so
# that $! is the server's own process id.
env PATH="$work/server/bin:/usr/bin:/bin" "$work/server/bin/chanlayer" serve --listen "$target" \
    --metrics-listen "127.0.0.1:$metrics" >"$work/server.log" 2>&1 &
server_pid=$!
python3 - "$metrics" <<'PY' || { cat "$work/server.log" >&2; exit 1; }
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/readyz"
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            print(f"GET /readyz: {response.status}")
            break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
PY

step "(a) the release tarball"
tar -xzf "$dist/chanlayer-$version-x86_64-linux-gnu.tar.gz" -C "$work"
[ "$(env PATH=/usr/bin:/bin "$work/chanlayer-$version-x86_64-linux-gnu/chanlayer" --version)" = "chanlayer $version" ]
echo "chanlayer-$version-x86_64-linux-gnu/chanlayer --version: chanlayer $version"

step "(b) pip install chanlayer: the native transport from its wheel"
new_venv native
# The layer's dependencies from PyPI, then chanlayer (and so chanlayer-native) from dist/ only.
# shellcheck disable=SC2046 # one requirement per word
pip_in native $(python3 clients/python/scripts/pure_requirements.py)
pip_in native --no-index --find-links "$dist" chanlayer
in_venv "$work/native" python -m pip list --format=freeze | grep -x "chanlayer-native==$version"
(cd "$work" && in_venv "$work/native" python "$smoke" "$target" native)

step "(c) the pure wheel alone: grpc.aio, with a warning"
new_venv pure
# shellcheck disable=SC2046 # one requirement per word
pip_in pure $(python3 clients/python/scripts/pure_requirements.py)
pip_in pure --no-index --no-deps "$dist/chanlayer-$version-py3-none-any.whl"
(cd "$work" && in_venv "$work/pure" python "$smoke" "$target" grpc WARNING)

step "(d) the floors: grpcio==$grpcio_floor, protobuf==$protobuf_floor"
new_venv floor
# googleapis-common-protos 1.63.0 (the floor) accepts protobuf 4.
# shellcheck disable=SC2046 # one requirement per word
pip_in floor $(python3 clients/python/scripts/pure_requirements.py) \
    "grpcio==$grpcio_floor" "protobuf==$protobuf_floor" "googleapis-common-protos==1.63.0"
pip_in floor --no-index --find-links "$dist" chanlayer
(cd "$work" && in_venv "$work/floor" python "$smoke" "$target" native)
(cd "$work" && CHANLAYER_TRANSPORT=grpc in_venv "$work/floor" python "$smoke" "$target" grpc)

step "(e) the chat example on the installed wheels: two daphne processes, pages in Chromium"
# The venv of (b), which has the layer and its native transport from dist/ alone; the example's
# test requirements come from PyPI. CHANLAYER_TRANSPORT=native makes any layer that cannot use
# the native transport fail instead of falling back.
pip_in native -r "$root/clients/python/examples/chat/requirements-test.txt"
(cd "$root/clients/python/examples/chat" &&
    CHANLAYER_TRANSPORT=native CHAT_ARTIFACTS="$root/test-artifacts/chat-installed" \
        in_venv "$work/native" python -m pytest -q -p no:cacheprovider tests/test_chat_e2e.py)

echo "install tests passed in $((SECONDS - started)) s"
