"""Fixtures: the real chanlayer server binary on a free loopback port, and layers on it.

``CHANLAYER_TEST_LISTEN=unix`` puts the session's server on a Unix domain socket instead
(``--listen unix:PATH``), so that the whole suite runs over the socket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import django
import pytest
from django.conf import settings

from chanlayer import ChannelLayer

if not settings.configured:
    settings.configure(
        SECRET_KEY="test", INSTALLED_APPS=["channels"], CHANNEL_LAYERS={}, USE_TZ=True
    )
    django.setup()

REPO_ROOT = Path(__file__).resolve().parents[3]


def pytest_report_header() -> str:
    """Say which transport the layers of this run use ($CHANLAYER_TRANSPORT forces one)."""
    return f"chanlayer transport: {ChannelLayer(target='127.0.0.1:1').transport}"


def server_binary() -> Path:
    """The server binary: $CHANLAYER_BIN, else the release build of this repository."""
    path = Path(os.environ.get("CHANLAYER_BIN", REPO_ROOT / "target" / "release" / "chanlayer"))
    if not path.is_file():
        pytest.fail(f"chanlayer server binary not found at {path}: run cargo build --release")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _socket_open(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(path) == 0


class Server:
    """One chanlayer server process that tests can stop and start again on the same port
    (or, with ``unix=True``, the same Unix socket path)."""

    def __init__(self, *extra_args: str, unix: bool = False) -> None:
        self.port = free_port()
        #: The Unix socket's path, for a server started with ``unix=True``.
        self.socket_path: str | None = None
        if unix:
            self._socket_dir = tempfile.mkdtemp(prefix="chanlayer-test-")
            self.socket_path = os.path.join(self._socket_dir, "chanlayer.sock")
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.log_path = Path(os.environ.get("CHANLAYER_TEST_LOG_DIR", "/tmp")) / (
            f"chanlayer-test-{self.port}.log"
        )

    @property
    def target(self) -> str:
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        return f"127.0.0.1:{self.port}"

    def listening(self) -> bool:
        if self.socket_path is not None:
            return _socket_open(self.socket_path)
        return _port_open(self.port)

    def start(self) -> None:
        cmd = [str(server_binary()), "serve", "--listen", self.target]
        if self.socket_path is not None and not any(
            a.startswith("--metrics-listen") for a in self.extra_args
        ):
            # Metrics stay on TCP; off here, so that servers on sockets need no port at all.
            cmd += ["--metrics-listen", "off"]
        cmd += self.extra_args
        log = self._log = self.log_path.open("ab")
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"chanlayer exited with {self.process.returncode}: "
                    f"{self.log_path.read_text()[-2000:]}"
                )
            if self.listening():
                return
            time.sleep(0.05)
        raise RuntimeError(f"chanlayer did not listen on {self.target} within 30 s")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The server shared by the whole test session."""
    srv = Server(unix=os.environ.get("CHANLAYER_TEST_LISTEN") == "unix")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def make_layer(server: Server) -> Iterator[type[ChannelLayer]]:
    """Build layers on the session server (in a fresh namespace per test)."""
    prefix = f"t{os.urandom(6).hex()}"

    def factory(**config: object) -> ChannelLayer:
        config.setdefault("target", server.target)
        config.setdefault("prefix", prefix)
        config.setdefault("connect_timeout", 5)
        return ChannelLayer(**config)  # type: ignore[arg-type]

    yield factory  # type: ignore[misc]


@pytest.fixture
async def channel_layer(make_layer: type[ChannelLayer]) -> AsyncIterator[ChannelLayer]:
    """A layer like channels_redis' test fixture: capacity 3, tiny channel capacity 1."""
    layer = make_layer(capacity=3, channel_capacity={"tiny": 1})
    yield layer
    await layer.flush()
    await layer.close()
