"""Fixtures of the end-to-end tests: chanlayer, daphne processes and Debian's Chromium.

Every process runs for real on a free loopback port and is stopped by the fixture that
started it. Logs of the servers go to the artefact directory, next to the screenshots.

Environment:

- ``CHANLAYER_BIN``: the server binary (default ``<repo>/target/release/chanlayer``);
- ``CHROMIUM``: the browser (default ``/usr/bin/chromium``, Debian's ``chromium`` package);
- ``CHAT_ARTIFACTS``: where logs and screenshots go (default ``<repo>/test-artifacts/chat``);
- ``CHANLAYER_NATS_SERVER``: the nats-server of the cluster tests (default: ``nats-server`` on
  PATH, which ``scripts/install-nats`` installs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import IO

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from chanlayer import ChannelLayer

EXAMPLE = Path(__file__).resolve().parents[1]
REPO = EXAMPLE.parents[3]
CHANLAYER_BIN = Path(os.environ.get("CHANLAYER_BIN", REPO / "target/release/chanlayer"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CHAT_ARTIFACTS", REPO / "test-artifacts/chat"))

#: Lease grace of the test server: a killed gateway's memberships go after this.
LEASE_GRACE_MS = 2000
#: Seconds between two reads of the room size by each connection.
ROOM_COUNT_REFRESH = 0.5
#: Default bound of every wait on the page, in milliseconds.
WAIT_MS = 10_000


def _load_nats_cluster() -> ModuleType:
    """The Python client suite's NATS cluster helper, loaded by path (both suites are ``tests``)."""
    path = REPO / "clients/python/tests/nats_cluster.py"
    spec = importlib.util.spec_from_file_location("chanlayer_test_nats_cluster", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


nats_cluster = _load_nats_cluster()

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


#: Shared with the client's own suite (the NATS harness is loaded from there too).
free_port = nats_cluster.free_port
wait_for = nats_cluster.wait_for


class Process:
    """A child process whose output goes to a log file in the artefact directory."""

    def __init__(self, name: str, args: list[str], *, cwd: Path | None = None) -> None:
        self.name = name
        self.args = args
        self.cwd = cwd
        self.env = dict(os.environ)
        self.log_path = ARTIFACTS / "logs" / f"{name}.log"
        self.log_path.unlink(missing_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start the process (appending to its log) and wait until it is ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start: {' '.join(self.args)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(self._ready, 30, f"{self.name} did not become ready")
        except BaseException:
            self.stop(kill=True)
            raise

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
            )
        return self.is_ready()

    def is_ready(self) -> bool:
        """Tell whether the started process serves requests."""
        raise NotImplementedError

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process: SIGKILL if ``kill``, else SIGTERM and SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


class Chanlayer(Process):
    """The chanlayer server on a fixed free port, so a restart keeps its address."""

    def __init__(self, name: str = "chanlayer", cluster: list[str] | None = None) -> None:
        self.port = free_port()
        super().__init__(
            name,
            [
                str(CHANLAYER_BIN),
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--log-format",
                "json",
                "--lease-grace-ms",
                str(LEASE_GRACE_MS),
                "--metrics-listen",
                "off",
            ],
        )
        if cluster is not None:
            # The flags of a cluster node (nats_cluster.NatsCluster.node_args) replace "off".
            self.args[-2:] = cluster
        self._listening_lines = 0

    @property
    def target(self) -> str:
        """The gRPC target of the server."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait for its next "chanlayer listening" log line."""
        self._listening_lines = self._count_listening()
        super().start()

    def is_ready(self) -> bool:
        """Tell whether the server logged "chanlayer listening" since the last start."""
        return self._count_listening() > self._listening_lines

    def group_size(self, group: str) -> int:
        """Ask the server how many members ``group`` has (the example's default prefix)."""

        async def read() -> int:
            layer = ChannelLayer(target=self.target)
            try:
                return await layer.group_size(group)
            finally:
                await layer.close()

        # A thread of its own: Playwright's sync API owns this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, read()).result(timeout=30)

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL if ``kill``) and start it on the same port."""
        self.stop(kill=kill)
        self.start()

    def _count_listening(self) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count('"chanlayer listening"')


class Daphne(Process):
    """One daphne process serving the chat example with the chanlayer layer."""

    def __init__(self, name: str, chanlayer: Chanlayer) -> None:
        self.port = free_port()
        super().__init__(
            name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "mysite.asgi:application",
            ],
            cwd=EXAMPLE,
        )
        self.env.update(
            DJANGO_SETTINGS_MODULE="mysite.settings",
            CHANLAYER_TARGET=chanlayer.target,
            CHAT_ROOM_COUNT_REFRESH=str(ROOM_COUNT_REFRESH),
            PYTHONUNBUFFERED="1",
        )

    @property
    def url(self) -> str:
        """The base URL of this process."""
        return f"http://127.0.0.1:{self.port}"

    def is_ready(self) -> bool:
        """Tell whether the room picker page answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/chat/", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


class Chat:
    """A running deployment: one chanlayer, two daphne processes, and the pages opened."""

    def __init__(self, context: BrowserContext, name: str) -> None:
        self.context = context
        self.chanlayer = Chanlayer(f"{name}-chanlayer")
        self.daphnes = [Daphne(f"{name}-daphne{i}", self.chanlayer) for i in range(2)]
        self.pages: list[Page] = []

    def start(self) -> None:
        """Start chanlayer, then both daphne processes."""
        self.chanlayer.start()
        for daphne in self.daphnes:
            daphne.start()

    def open(self, daphne: int, room: str = "lobby") -> Page:
        """Open ``/chat/<room>/`` served by daphne number ``daphne``; wait until connected."""
        page = self.context.new_page()
        self.pages.append(page)
        page.goto(f"{self.daphnes[daphne].url}/chat/{room}/")
        expect(page.locator("#status")).to_have_text("connected", timeout=WAIT_MS)
        return page

    def stop(self) -> None:
        """Close every page, then stop the daphne processes, then chanlayer."""
        for page in self.pages:
            with contextlib.suppress(Exception):
                page.close()
        for daphne in self.daphnes:
            daphne.stop()
        self.chanlayer.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile; never a downloaded browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    if not CHANLAYER_BIN.exists():
        pytest.fail(f"{CHANLAYER_BIN} is missing: cargo build --release")
    with (
        tempfile.TemporaryDirectory(prefix="chat-e2e-profile-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 640, "height": 560},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def chat(browser: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Chat]:
    """A fresh deployment for one test, stopped (pages, daphne, chanlayer) afterwards."""
    deployment = Chat(browser, request.node.name)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


class ClusterChat(Chat):
    """The chat over two chanlayer nodes: daphne A on node A, daphne B on node B.

    Each node is joined to its own server of a 3-server NATS cluster (listing the others
    after it); ``chanlayer`` is node A, for the fixtures' ``group_size`` reads.
    """

    def __init__(self, context: BrowserContext, name: str, binary: str) -> None:
        self.context = context
        self.nats = nats_cluster.NatsCluster(binary, ARTIFACTS / "logs" / f"{name}-nats")
        self.metrics_ports = [free_port(), free_port()]
        self.nodes = [
            Chanlayer(
                f"{name}-chanlayer-{node}",
                self.nats.node_args(server, node, self.metrics_ports[server]),
            )
            for server, node in enumerate("ab")
        ]
        self.chanlayer = self.nodes[0]
        self.daphnes = [
            Daphne(f"{name}-daphne-{node}", chanlayer)
            for node, chanlayer in zip("ab", self.nodes, strict=True)
        ]
        self.pages = []

    def start(self) -> None:
        """Start NATS, both nodes (ready and aware of each other), then both daphnes."""
        self.nats.start()
        for node in self.nodes:
            node.start()
        nats_cluster.wait_nodes_joined(self.metrics_ports)
        for daphne in self.daphnes:
            daphne.start()

    def stop(self) -> None:
        """Stop the pages, the daphne processes and the nodes, then NATS."""
        try:
            super().stop()
            self.nodes[1].stop()
        finally:
            self.nats.stop()


@pytest.fixture
def cluster_chat(browser: BrowserContext, request: pytest.FixtureRequest) -> Iterator[ClusterChat]:
    """A fresh deployment over two chanlayer nodes for one test, stopped afterwards."""
    binary = nats_cluster.nats_server_binary()
    if binary is None:
        message = "nats-server not found: run scripts/install-nats or set CHANLAYER_NATS_SERVER"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    deployment = ClusterChat(browser, request.node.name, binary)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
