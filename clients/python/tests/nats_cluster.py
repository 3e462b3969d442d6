"""A real NATS cluster for the cluster-mode tests, and chanlayer nodes joined to it.

Three ``nats-server`` processes with routes to each other on loopback (as the server's own
cluster tests run them, tests/integration/support/nats.rs), each killed when the cluster
stops. The binary is ``$CHANLAYER_NATS_SERVER``, else ``nats-server`` on PATH
(``./scripts/test`` installs it with ``scripts/install-nats``). The module needs only the
standard library: the chat example's tests load it by path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: Milliseconds between two heartbeats of a test node: a killed node leaves the cluster view
#: after a few of them.
HEARTBEAT_MS = 200


def nats_server_binary() -> str | None:
    """The nats-server binary: ``$CHANLAYER_NATS_SERVER``, else ``nats-server`` on PATH."""
    configured = os.environ.get("CHANLAYER_NATS_SERVER")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("nats-server")


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms until it is true; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout:g} s")


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET ``http://127.0.0.1:<port><path>``: the status and body, ``(0, "")`` if unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def metric(port: int, name: str) -> float:
    """The value of the unlabelled metric ``name`` on a node's ``/metrics`` (-1 if absent)."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        return -1
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1


class NatsServer:
    """One ``nats-server`` of the cluster: a client port, a monitoring port and a route port."""

    def __init__(self, binary: str, config: Path, log: Path) -> None:
        self.binary = binary
        self.config = config
        self.log_path = log
        self.port = free_port()
        self.monitor = free_port()
        self.route = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (its configuration file must be written)."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=self._log, stderr=subprocess.STDOUT
        )

    def routes(self) -> int:
        """How many routes to other servers it has (0 when it does not answer)."""
        status, body = http_get(self.monitor, "/routez")
        return int(json.loads(body).get("num_routes", 0)) if status == 200 else 0

    def kill(self) -> None:
        """SIGKILL the server and reap it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


class NatsCluster:
    """Three NATS servers routed to each other on loopback."""

    def __init__(self, binary: str, log_dir: Path, size: int = 3) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="chanlayer-nats-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.servers = [
            NatsServer(binary, self._dir / f"n{i}.conf", log_dir / f"nats-n{i}.log")
            for i in range(size)
        ]

    def start(self) -> None:
        """Write the configurations, start every server and wait until all are routed."""
        for i, server in enumerate(self.servers):
            routes = ", ".join(
                f"nats-route://127.0.0.1:{other.route}"
                for other in self.servers
                if other is not server
            )
            server.config.write_text(
                f"server_name: n{i}\n"
                f"listen: 127.0.0.1:{server.port}\n"
                f"http: 127.0.0.1:{server.monitor}\n"
                'ping_interval: "1s"\n'
                'write_deadline: "2s"\n'
                "max_payload: 8MB\n"
                "jetstream {\n"
                f'  store_dir: "{self._dir / f"js{i}"}"\n'
                "  max_memory_store: 256MB\n"
                "  max_file_store: 256MB\n"
                "}\n"
                "cluster {\n"
                "  name: chanlayer-test\n"
                f"  listen: 127.0.0.1:{server.route}\n"
                f"  routes: [{routes}]\n"
                "}\n"
            )
            server.start()
        want = len(self.servers) - 1
        try:
            wait_for(
                lambda: all(s.routes() >= want for s in self.servers),
                15,
                "the NATS servers did not route to each other",
            )
        except BaseException:
            self.stop()
            raise

    def urls_from(self, first: int) -> str:
        """Every server's URL, server ``first``'s first, as a node next to it lists them."""
        ordered = [self.servers[first]] + [s for i, s in enumerate(self.servers) if i != first]
        return ",".join(s.url for s in ordered)

    def node_args(self, server: int, name: str, metrics_port: int) -> list[str]:
        """The ``chanlayer serve`` flags of node ``name`` on server ``server``."""
        return [
            "--cluster-nats-url",
            self.urls_from(server),
            "--cluster-node-name",
            name,
            "--cluster-heartbeat-ms",
            str(HEARTBEAT_MS),
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
        ]

    def stop(self) -> None:
        """Kill every server and remove the configurations."""
        for server in self.servers:
            server.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


def wait_nodes_joined(metrics_ports: list[int], timeout: float = 10) -> None:
    """Wait until every node is ready and has heard the heartbeats of all the others."""
    want = len(metrics_ports) - 1
    wait_for(
        lambda: all(http_get(p, "/readyz")[0] == 200 for p in metrics_ports),
        timeout,
        "the chanlayer nodes did not become ready",
    )
    wait_for(
        lambda: all(metric(p, "chanlayer_cluster_nodes") >= want for p in metrics_ports),
        timeout,
        "the chanlayer nodes did not see each other",
    )
