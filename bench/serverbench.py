#!/usr/bin/env python3
"""The server alone, driven by its own load generator, beside a pipelined redis-benchmark.

Runs, ``--runs`` times and interleaved so that every round sees the same hour of the
machine: ``chanlayer-loadgen``'s throughput scenario (1 KiB messages through session
streams, as fast as acknowledgements allow), its latency scenario (20 000 messages/s), and
``redis-benchmark`` pipelining SET and GET of 1 KiB values against the redis-server given.
Then the GroupSend and memory scenarios once each. Prints every run's output and a summary
of medians, and writes them to ``--out`` (text) and ``--json``.

    python bench/serverbench.py --loadgen target/release/chanlayer-loadgen \
        --target http://127.0.0.1:50051 --server-pid PID --redis-port 6379 \
        --out server-bench.txt --json server-bench.json [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

THROUGHPUT = "stream --pairs 4 --messages 400000"
LATENCY = "stream --pairs 4 --messages 100000 --rate 20000 --pacing tick"
ONCE = (
    "group --members 10000 --rounds 50 --size 100",
    "memory --pending 100000 --channels 100000 --depth 10 --size 100",
)
QUICK_THROUGHPUT = "stream --pairs 2 --messages 20000"
QUICK_LATENCY = "stream --pairs 2 --messages 4000 --rate 2000 --pacing tick"
QUICK_ONCE = ("group --members 200 --rounds 5", "memory --pending 2000 --channels 2000 --depth 2")
REDIS = "-t set,get -P 16 -d 1024 -n 1000000"
QUICK_REDIS = "-t set,get -P 16 -d 1024 -n 20000"

RATE = re.compile(r": (\d+) messages/s sent and delivered")
PERCENTILES = re.compile(r"p50 (\d+) us, p90 (\d+) us, p99 (\d+) us")


class Bench:
    """Runs commands, echoes and keeps their output."""

    def __init__(self) -> None:
        self.text: list[str] = []

    def run(self, shown: str, argv: list[str]) -> str:
        """Run ``argv`` (shown as ``shown``); its output, or exit on failure."""
        header = f"$ {shown}"
        print(header, flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        output = done.stdout + done.stderr
        print(output, flush=True)
        self.text.extend([header, output])
        if done.returncode != 0:
            sys.exit(f"serverbench: {shown} failed with exit status {done.returncode}")
        return output

    def loadgen(self, args: argparse.Namespace, scenario: str) -> str:
        """One ``chanlayer-loadgen`` scenario against the server."""
        argv = [args.loadgen, "--target", args.target, "--namespace", "bench-server"]
        if args.server_pid:
            argv += ["--server-pid", str(args.server_pid)]
        return self.run(
            f"chanlayer-loadgen --scenario {scenario}", [*argv, "--scenario", *scenario.split()]
        )

    def redis(self, args: argparse.Namespace, options: str) -> dict[str, float]:
        """One ``redis-benchmark`` run: requests per second of each test."""
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(args.redis_port), "--csv"]
        out = self.run(f"redis-benchmark {options}", [*argv, *options.split()])
        rows = csv.DictReader(io.StringIO(out))
        return {row["test"]: float(row["rps"]) for row in rows}


def parse_rate(output: str) -> float:
    """Messages per second sent and delivered, from a stream scenario's report."""
    match = RATE.search(output)
    if match is None:
        sys.exit(f"serverbench: no throughput in the load generator's report:\n{output}")
    return float(match.group(1))


def parse_p99(output: str) -> float:
    """The send-to-delivery p99 in microseconds, from a stream scenario's report."""
    match = PERCENTILES.search(output)
    if match is None:
        sys.exit(f"serverbench: no latency percentiles in the load generator's report:\n{output}")
    return float(match.group(3))


def main() -> None:
    """Run the rounds, then the one-off scenarios, and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--loadgen", required=True, help="the chanlayer-loadgen binary")
    parser.add_argument("--target", required=True, help="the chanlayer server to drive")
    parser.add_argument("--server-pid", type=int, default=0, help="for the memory scenario")
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small counts (correctness only)")
    parser.add_argument("--out", required=True, help="the text report")
    parser.add_argument("--json", default="", help="the figures as JSON")
    args = parser.parse_args()

    bench = Bench()
    throughput, latency = (QUICK_THROUGHPUT, QUICK_LATENCY) if args.quick else (THROUGHPUT, LATENCY)
    redis_options = QUICK_REDIS if args.quick else REDIS
    rates: list[float] = []
    p99s: list[float] = []
    redis_runs: list[dict[str, float]] = []
    for _ in range(max(1, args.runs)):
        rates.append(parse_rate(bench.loadgen(args, throughput)))
        p99s.append(parse_p99(bench.loadgen(args, latency)))
        redis_runs.append(bench.redis(args, redis_options))
    for scenario in QUICK_ONCE if args.quick else ONCE:
        bench.loadgen(args, scenario)

    redis_median = {
        test: statistics.median(run[test] for run in redis_runs) for test in redis_runs[0]
    }
    summary = [
        f"Medians of {len(rates)} interleaved rounds (each: the two chanlayer-loadgen stream "
        "scenarios, then redis-benchmark):",
        f"  chanlayer, 1 KiB messages sent and delivered: {statistics.median(rates):.0f}/s "
        f"(runs: {', '.join(f'{r:.0f}' for r in rates)})",
        f"  chanlayer, send-to-delivery p99 at the paced rate: {statistics.median(p99s):.0f} us "
        f"(runs: {', '.join(f'{p:.0f}' for p in p99s)})",
        f"  redis-benchmark {redis_options}: "
        + ", ".join(
            f"{test} {rps:.0f} requests/s (runs: "
            + ", ".join(f"{run[test]:.0f}" for run in redis_runs)
            + ")"
            for test, rps in redis_median.items()
        ),
    ]
    print("\n".join(summary))
    Path(args.out).write_text("\n".join([*bench.text, *summary]) + "\n")
    if args.json:
        figures = {
            "runs": len(rates),
            "throughput_scenario": throughput,
            "latency_scenario": latency,
            "msgs_per_s": rates,
            "msgs_per_s_median": statistics.median(rates),
            "p99_us": p99s,
            "p99_us_median": statistics.median(p99s),
            "redis_benchmark": redis_options,
            "redis_rps": redis_runs,
            "redis_rps_median": redis_median,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
