#!/usr/bin/env python3
"""Cluster mode under failure: what a NATS server or a node killed costs senders and receivers.

Starts a three-server NATS cluster (as ``bench/cluster.py`` does) and two chanlayer nodes, A on
NATS server 0 and B on NATS server 1, and runs ``chanlayer-loadgen --scenario failover``: from A,
``--rate`` group sends per second to groups whose members are on B, and as many sends on A's
session stream to process-specific channels on B, for ``--seconds``. ``--kill-at`` seconds after
the traffic starts, it SIGKILLs B's NATS server (``--kill nats``) or node B itself (``--kill
node``). The loadgen counts the calls that failed (by reason), the slowest call, the messages
acknowledged but never delivered (lost) or delivered twice, and the longest time B went
without a delivery. ``--runs`` runs for each kind of kill; results go to ``--out`` as JSON lines.

Usage::

    bench/cluster_failover.py --runs 3 --kill nats,node
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import ROOT, Nats, start_node


def run_once(args: argparse.Namespace, kill: str, workdir: Path) -> dict:
    """One run: fresh NATS cluster and nodes, traffic, one kill."""
    nats = Nats(args.nats_server, workdir)
    procs = []
    try:
        a, target_a = start_node(args.bin, nats, 0, workdir / "nodes.log")
        procs.append(a)
        b, target_b = start_node(args.bin, nats, 1, workdir / "nodes.log")
        procs.append(b)
        loadgen = subprocess.Popen(
            [
                args.loadgen,
                "--scenario",
                "failover",
                "--targets",
                f"{target_a},{target_b}",
                "--groups",
                str(args.groups),
                "--group-members",
                "1",
                "--receivers",
                str(args.receivers),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
                "--window",
                str(args.window),
                "--size",
                "200",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert loadgen.stdout is not None
        first = loadgen.stdout.readline()
        if first.strip() != "sending":
            loadgen.kill()
            raise SystemExit(f"loadgen did not start: {first}{loadgen.communicate()}")
        started = time.monotonic()
        time.sleep(args.kill_at)
        victim = nats.procs[1] if kill == "nats" else b
        victim.kill()
        killed_ms = round((time.monotonic() - started) * 1000)
        try:
            out, err = loadgen.communicate(timeout=args.seconds + 40)
        except subprocess.TimeoutExpired:
            loadgen.kill()
            return {"kill": kill, "hung": True}
        line = next((x for x in out.splitlines() if x.strip().startswith("json ")), None)
        if loadgen.returncode != 0 or line is None:
            raise SystemExit(f"loadgen failed ({kill}):\n{out}{err}")
        result = json.loads(line.strip()[len("json ") :])
        result["kill"] = kill
        result["killed_at_ms"] = killed_ms
        result["finished_after_s"] = round(time.monotonic() - started, 1)
        return result
    finally:
        for p in procs:
            p.kill()
            p.wait()
        nats.stop()


def main() -> None:
    """Runs each kind of kill ``--runs`` times, interleaved, and prints the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(ROOT / "target/release/chanlayer"))
    parser.add_argument("--loadgen", default=str(ROOT / "target/release/chanlayer-loadgen"))
    parser.add_argument("--nats-server", default=shutil.which("nats-server") or "nats-server")
    parser.add_argument("--kill", default="nats,node", help="nats, node; a list")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--kill-at", type=float, default=3.0)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--receivers", type=int, default=20)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "docs/benchmarks/cluster.jsonl"))
    args = parser.parse_args()
    kills = [k.strip() for k in args.kill.split(",") if k.strip()]
    results: dict[str, list[dict]] = {k: [] for k in kills}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for kill in kills:
                r = run_once(args, kill, Path(tmp))
                r["run"] = run
                r["load"] = os.getloadavg()[0]
                results[kill].append(r)
                print(json.dumps(r), flush=True)
    with open(args.out, "a", encoding="utf-8") as f:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for rs in results.values():
            for r in rs:
                f.write(json.dumps({**r, "scenario": "failover", "at": stamp}) + "\n")
    print(
        f"\nmedians of {args.runs} runs, {args.rate}/s group sends and {args.rate}/s direct sends"
    )
    print("| killed | kind | acked | failed | lost | duplicated | slowest call | longest gap |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kill, rs in results.items():
        if any(r.get("hung") for r in rs):
            print(f"| {kill} | a run did not finish |")
            continue
        for kind in ("group", "direct"):

            def med(f, rs: list[dict] = rs) -> float:
                return statistics.median(f(r) for r in rs)

            print(
                f"| {kill} | {kind} | {med(lambda r, k=kind: r[k]['acked']):.0f} | "
                f"{med(lambda r, k=kind: sum(r[k]['errors'].values())):.0f} | "
                f"{med(lambda r, k=kind: r[k]['lost']):.0f} | "
                f"{med(lambda r, k=kind: r[k]['duplicated']):.0f} | "
                f"{med(lambda r, k=kind: r[k]['slowest_ms']):.0f} ms | "
                f"{med(lambda r: r['longest_gap_ms']):.0f} ms |"
            )


if __name__ == "__main__":
    main()
