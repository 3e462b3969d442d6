#!/usr/bin/env python3
"""Cluster mode side by side: group sends on one node without NATS, and on 1, 2 and 3 nodes.

Starts a three-server NATS cluster (routes on loopback; each node on its own server) and
chanlayer nodes as processes, drives them with ``chanlayer-loadgen --scenario fanout``
(``--groups`` groups of ``--group-members`` members spread over the nodes, one sender per
node, ``--rate`` group sends per second in all), and prints the medians of ``--runs`` runs per
topology: deliveries per second and send-to-delivery p50/p99 for members on the sender's node
(local) and on another node (remote). Every run checks that each member got every message
exactly once. Results go to ``--out`` as JSON lines.

Usage::

    bench/cluster.py --runs 3 --rate 2000   # release binaries of target/release
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
                "  max_memory_store: 256MB\n}\n"
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
    binary: str, nats: Nats | None, index: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """A chanlayer node on a free port, joined to NATS server ``index`` when ``nats``."""
    port = free_port()
    args = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off"]
    if nats is not None:
        args += ["--cluster-nats-url", nats.urls_from(index), "--cluster-node-name", f"n{index}"]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                # In cluster mode the node also needs its NATS connection and subscriptions.
                time.sleep(0.3 if nats else 0.05)
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"chanlayer did not listen; see {log}")


def run_once(args: argparse.Namespace, topology: str, nodes: int, workdir: Path) -> dict:
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
            [
                args.loadgen,
                "--scenario",
                "fanout",
                "--targets",
                ",".join(targets),
                "--groups",
                str(args.groups),
                "--group-members",
                str(args.group_members),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
                "--size",
                str(args.size),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.strip().startswith("json ")), None)
        if out.returncode != 0 or line is None:
            raise SystemExit(f"loadgen failed ({topology}, {nodes}):\n{out.stdout}{out.stderr}")
        result = json.loads(line.strip()[len("json ") :])
        result["topology"] = topology
        return result
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if nats is not None:
            nats.stop()


def main() -> None:
    """Runs every topology ``--runs`` times, interleaved, and prints the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(ROOT / "target/release/chanlayer"))
    parser.add_argument("--loadgen", default=str(ROOT / "target/release/chanlayer-loadgen"))
    parser.add_argument("--nats-server", default=shutil.which("nats-server") or "nats-server")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--group-members", type=int, default=30)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks/cluster.jsonl"))
    args = parser.parse_args()
    topologies = [("single", 1), ("cluster", 1), ("cluster", 2), ("cluster", 3)]
    results: dict[tuple[str, int], list[dict]] = {t: [] for t in topologies}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for topology, nodes in topologies:
                r = run_once(args, topology, nodes, Path(tmp))
                r["run"] = run
                results[(topology, nodes)].append(r)
                print(json.dumps(r), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as f:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        load = os.getloadavg()[0]
        for rs in results.values():
            for r in rs:
                f.write(json.dumps({**r, "at": stamp, "load": load}) + "\n")
    print(
        f"\nmedians of {args.runs} runs, {args.rate} group sends/s, "
        f"{args.groups} groups x {args.group_members} members"
    )
    print("| topology | nodes | deliveries/s | local p50 | local p99 | remote p50 | remote p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (topology, nodes), rs in results.items():

        def med(key: str, rs: list[dict] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        remote = (
            f"{med('remote_p50_us'):.0f} us | {med('remote_p99_us'):.0f} us"
            if nodes > 1
            else "- | -"
        )
        print(
            f"| {topology} | {nodes} | {med('deliveries_per_s'):.0f} | "
            f"{med('local_p50_us'):.0f} us | {med('local_p99_us'):.0f} us | {remote} |"
        )


if __name__ == "__main__":
    main()
