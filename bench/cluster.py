#!/usr/bin/env python3
"""Cluster mode side by side: one node without NATS, and 1, 2 and 3 nodes.

Starts a three-server NATS cluster (routes on loopback, JetStream on; each node on its own
server) and chanlayer nodes as processes, and drives them with ``chanlayer-loadgen``:

- ``fanout``: ``--groups`` groups of ``--group-members`` members spread over the nodes, one
  sender per node, ``--rate`` group sends per second in all;
- ``direct``: ``--receivers`` process-specific channels spread over the nodes, one sender
  session per node sending to all of them on its stream, ``--rate`` messages per second in
  all (0: as fast as a ``--window`` of unacknowledged sends allows);
- ``queue``: ``--channels`` normal channels with a worker per channel on every node, one
  sender per node (on its stream, or unary calls with ``--unary``), ``--rate`` messages per
  second in all (0: as fast as possible). On ``single`` they are the node's own channels; in
  a cluster they are shared through the JetStream work-queue stream.

``--scenario`` takes a comma-separated list; ``--rate-for direct=5000`` sets one scenario's
rate. Each run starts every (scenario, topology) afresh, in turn, and the script prints the
medians of ``--runs`` runs: deliveries per second and send-to-delivery p50/p99 for receivers
on the sender's node (local) and on another node (remote). Every run checks exactly-once
delivery (and order per sender, for fanout and direct). Results go to ``--out`` as JSON
lines.

Usage::

    bench/cluster.py --runs 3 --rate 2000   # release binaries of target/release
    bench/cluster.py --scenario direct,queue --rate 5000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nats:
    """Three nats-server processes routed to each other."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
        for i, (port, monitor, route) in enumerate(self.ports):
            routes = ", ".join(
                f"nats-route://127.0.0.1:{r}" for j, (_, _, r) in enumerate(self.ports) if j != i
            )
            conf = workdir / f"n{i}.conf"
            conf.write_text(
                f"server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n"
                f"max_payload: 8MB\n"
                f'jetstream {{\n  store_dir: "{workdir / f"js{i}"}"\n'
                f"  max_memory_store: 256MB\n}}\n"
                f"cluster {{\n  name: bench\n  listen: 127.0.0.1:{route}\n"
                f"  routes: [{routes}]\n}}\n"
            )
            self.procs.append(
                subprocess.Popen(
                    [binary, "-c", str(conf)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all(self.routes(m) >= 2 for (_, m, _) in self.ports):
                return
            time.sleep(0.05)
        self.stop()
        raise SystemExit("the NATS servers did not route to each other")

    @staticmethod
    def routes(monitor: int) -> int:
        """Routes of the server whose monitoring port is ``monitor``."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/routez", timeout=1) as r:
                return int(json.load(r)["num_routes"])
        except OSError:
            return 0

    def urls_from(self, first: int) -> str:
        """Server ``first``'s URL, then the others'."""
        order = [first] + [i for i in range(3) if i != first]
        return ",".join(f"nats://127.0.0.1:{self.ports[i][0]}" for i in order)

    def stop(self) -> None:
        """Kills the servers."""
        for p in self.procs:
            p.kill()
            p.wait()


def start_node(
    binary: str, nats: Nats | None, index: int, log: Path, extra: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A chanlayer node on a free port, joined to NATS server ``index`` when ``nats``."""
    port, metrics = free_port(), free_port()
    args = [binary, "serve", "--listen", f"127.0.0.1:{port}"]
    args += ["--metrics-listen", f"127.0.0.1:{metrics}"]
    if nats is not None:
        args += ["--cluster-nats-url", nats.urls_from(index), "--cluster-node-name", f"n{index}"]
        # The capacity the loadgen asks of a single node's normal channels.
        args += ["--cluster-normal-capacity", "10000"]
        args += extra or []
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out)
    # Ready: serving, and in cluster mode connected to NATS with the normal channels' stream.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"chanlayer did not become ready; see {log}")


def scenario_args(args: argparse.Namespace, scenario: str) -> list[str]:
    """The loadgen arguments of ``scenario``."""
    rate = args.rates.get(scenario, args.rate)
    common = ["--scenario", scenario, "--rate", str(rate), "--seconds", str(args.seconds)]
    common += ["--size", str(args.size)]
    if scenario == "fanout":
        return [*common, "--groups", str(args.groups), "--group-members", str(args.group_members)]
    if scenario == "direct":
        return [*common, "--receivers", str(args.receivers), "--window", str(args.window)]
    extra = ["--unary"] if args.unary else []
    return [*common, "--channels", str(args.channels), "--window", str(args.window), *extra]


def run_once(
    args: argparse.Namespace, scenario: str, topology: str, nodes: int, workdir: Path
) -> dict:
    """One loadgen run on a fresh topology."""
    nats = Nats(args.nats_server, workdir) if topology == "cluster" else None
    procs = []
    try:
        targets = []
        for i in range(nodes):
            proc, target = start_node(args.bin, nats, i, workdir / "nodes.log")
            procs.append(proc)
            targets.append(target)
        out = subprocess.run(
            [args.loadgen, "--targets", ",".join(targets), *scenario_args(args, scenario)],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.strip().startswith("json ")), None)
        if out.returncode != 0 or line is None:
            print(f"loadgen failed ({scenario}, {topology}, {nodes}):\n{out.stdout}{out.stderr}")
            return {"scenario": scenario, "topology": topology, "nodes": nodes, "failed": True}
        result = json.loads(line.strip()[len("json ") :])
        result["scenario"] = scenario
        result["topology"] = topology
        return result
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if nats is not None:
            nats.stop()


def main() -> None:
    """Runs every (scenario, topology) ``--runs`` times, interleaved, and prints the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(ROOT / "target/release/chanlayer"))
    parser.add_argument("--loadgen", default=str(ROOT / "target/release/chanlayer-loadgen"))
    parser.add_argument("--nats-server", default=shutil.which("nats-server") or "nats-server")
    parser.add_argument("--scenario", default="fanout", help="fanout, direct, queue; a list")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument(
        "--rate-for", action="append", default=[], help="SCENARIO=RATE, overrides --rate"
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--group-members", type=int, default=30)
    parser.add_argument("--receivers", type=int, default=30)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--unary", action="store_true")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks/cluster.jsonl"))
    args = parser.parse_args()
    args.rates = {k: int(v) for k, v in (x.split("=", 1) for x in args.rate_for)}
    scenarios = [x.strip() for x in args.scenario.split(",") if x.strip()]
    topologies = [("single", 1), ("cluster", 1), ("cluster", 2), ("cluster", 3)]
    keys = [(sc, t, n) for sc in scenarios for (t, n) in topologies]
    results: dict[tuple[str, str, int], list[dict]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for scenario, topology, nodes in keys:
                r = run_once(args, scenario, topology, nodes, Path(tmp))
                r["run"] = run
                r["load"] = os.getloadavg()[0]
                results[(scenario, topology, nodes)].append(r)
                print(json.dumps(r), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as f:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for rs in results.values():
            for r in rs:
                f.write(json.dumps({**r, "at": stamp}) + "\n")
    loads = [r["load"] for rs in results.values() for r in rs]
    print(f"\nload average (1 min) during the runs: {min(loads):.2f} to {max(loads):.2f}")
    for scenario in scenarios:
        rate = args.rates.get(scenario, args.rate)
        print(f"\n{scenario}: medians of {args.runs} runs, rate {rate or 'unlimited'}")
        print(
            "| topology | nodes | deliveries/s | local p50 | local p99 | remote p50 | remote p99 |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for (sc, topology, nodes), rs in results.items():
            if sc != scenario:
                continue

            failed = sum(1 for r in rs if r.get("failed"))
            rs = [r for r in rs if not r.get("failed")]
            if not rs:
                print(f"| {topology} | {nodes} | every run failed |")
                continue
            note = f" ({failed} failed runs)" if failed else ""

            def med(key: str, rs: list[dict] = rs) -> float:
                return statistics.median(r[key] for r in rs)

            remote = (
                f"{med('remote_p50_us'):.0f} us | {med('remote_p99_us'):.0f} us"
                if nodes > 1
                else "- | -"
            )
            print(
                f"| {topology} | {nodes} | {med('deliveries_per_s'):.0f} | "
                f"{med('local_p50_us'):.0f} us | {med('local_p99_us'):.0f} us | {remote} |{note}"
            )


if __name__ == "__main__":
    main()
