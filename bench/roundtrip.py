#!/usr/bin/env python3
r"""Where a round trip goes: sequential send->receive through the Python layer, with CPU per trip.

Starts ``chanlayer serve`` (``--server``, default ``$CHANLAYER_BIN``) on a free loopback port,
or on a Unix socket with ``--unix``, once per configuration given with ``--config`` (extra
server flags, e.g. ``--config "" --config "--worker-threads 1"``), and runs ``--trips``
sequential round trips (``await send(ch, m); await receive(ch)``, 100-byte body) through
``chanlayer.ChannelLayer`` on the transport the environment selects (``CHANLAYER_TRANSPORT``).
For each run it prints round trips per second, the p50 and p99 of one trip, and the CPU one
trip costs the client process and the server process (read from ``/proc/<pid>/stat``).
Configurations alternate, ``--runs`` times each; the medians come last.

``--placement`` (repeatable) sets where the two processes run: ``free`` (the scheduler's
choice, the default), ``same`` (client and server both on CPU 0) or ``split`` (server on CPU 0,
client on CPU 1). With each placement the tool also times the platform's floor: a 1-byte
ping-pong between two processes over a Unix socket pair, placed the same way, which costs the
two wake-ups a round trip needs and nothing else.

Run under ``strace -c -f`` or ``perf record -g`` to count syscalls or sample either side.

Usage::

    CHANLAYER_BIN=target/release/chanlayer .venv/bin/python bench/roundtrip.py \
        --runs 3 --config "" --config "--worker-threads 1"
    CHANLAYER_BIN=target/release/chanlayer .venv/bin/python bench/roundtrip.py \
        --runs 3 --placement free --placement same --placement split
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chanlayer import ChannelLayer

_TICKS = os.sysconf("SC_CLK_TCK")

# CPUs of the server and of the client for each placement; None: the scheduler's choice.
PLACEMENTS: dict[str, tuple[set[int] | None, set[int] | None]] = {
    "free": (None, None),
    "same": ({0}, {0}),
    "split": ({0}, {1}),
}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid``, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    binary: str, extra: list[str], unix_dir: str | None, cpus: set[int] | None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server with ``extra`` flags, on ``cpus`` if given.

    Returns the process and the layer's target.
    """
    if unix_dir is not None:
        path = os.path.join(unix_dir, f"rt-{time.monotonic_ns()}.sock")
        listen, target = f"unix:{path}", f"unix:{path}"
    else:
        port = free_port()
        listen, target = f"127.0.0.1:{port}", f"127.0.0.1:{port}"
    # The server inherits this thread's CPUs, and its threads inherit them in turn.
    mine = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    try:
        proc = subprocess.Popen(
            [binary, "serve", "--listen", listen, "--metrics-listen", "off", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    finally:
        os.sched_setaffinity(0, mine)
    assert proc.stderr is not None
    for raw in proc.stderr:
        if b"chanlayer listening" in raw:
            break
    else:
        raise SystemExit(f"the server did not start: {binary} {' '.join(extra)}")
    return proc, target


async def trips(target: str, count: int, server_pid: int) -> dict[str, float]:
    """``count`` sequential round trips after a warm-up; figures of one trip."""
    layer = ChannelLayer(target=target)
    channel = await layer.new_channel()
    body = "x" * 100
    for i in range(500):
        await layer.send(channel, {"type": "warm", "i": i})
        await layer.receive(channel)
    latencies = []
    server0, cpu0, t0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    for i in range(count):
        start = time.perf_counter()
        await layer.send(channel, {"type": "bench", "i": i, "body": body})
        message = await layer.receive(channel)
        latencies.append(time.perf_counter() - start)
        if message["i"] != i:
            raise SystemExit(f"trip {i}: got {message['i']}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server = cpu_seconds(server_pid) - server0
    await layer.close_pools()
    latencies.sort()
    return {
        "trips_per_s": count / wall,
        "p50_us": latencies[count // 2] * 1e6,
        "p99_us": latencies[int(count * 0.99)] * 1e6,
        "client_cpu_us": cpu / count * 1e6,
        "server_cpu_us": server / count * 1e6,
    }


def pingpong(count: int, cpus: tuple[set[int] | None, set[int] | None]) -> float:
    """Median µs of a 1-byte round trip between two processes over a Unix socket pair."""
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:  # the echo side, placed as the server
        ours.close()
        if cpus[0] is not None:
            os.sched_setaffinity(0, cpus[0])
        while data := theirs.recv(16):
            theirs.sendall(data)
        os._exit(0)
    theirs.close()
    times = []
    try:
        for _ in range(count + 500):
            start = time.perf_counter()
            ours.sendall(b"x")
            ours.recv(16)
            times.append(time.perf_counter() - start)
    finally:
        ours.close()
        os.waitpid(child, 0)
    return statistics.median(times[500:]) * 1e6


def main() -> None:
    """Run every configuration ``--runs`` times, alternating, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default=os.environ.get("CHANLAYER_BIN", "chanlayer"))
    parser.add_argument("--config", action="append", help="extra server flags (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--unix", action="store_true", help="serve on a Unix socket")
    parser.add_argument(
        "--placement",
        action="append",
        choices=sorted(PLACEMENTS),
        help="where the client and the server run (repeatable; default: free)",
    )
    args = parser.parse_args()
    configs = args.config or [""]
    placements = args.placement or ["free"]
    everywhere = os.sched_getaffinity(0)
    needed = {cpu for p in placements for cpus in PLACEMENTS[p] if cpus for cpu in cpus}
    if not needed <= everywhere:
        parser.error(
            f"the placements need CPUs {sorted(needed)}; this process may use {sorted(everywhere)}"
        )
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for placement in placements:
                server_cpus, client_cpus = PLACEMENTS[placement]
                os.sched_setaffinity(0, client_cpus or everywhere)
                floor = pingpong(args.trips, PLACEMENTS[placement])
                for config in configs:
                    proc, target = start_server(
                        args.server, shlex.split(config), tmp if args.unix else None, server_cpus
                    )
                    try:
                        figures = asyncio.run(trips(target, args.trips, proc.pid))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=15)
                    figures["floor_us"] = floor
                    label = f"{config or 'defaults'}, {placement}"
                    results.setdefault(label, []).append(figures)
                    shown = ", ".join(f"{k}={v:.1f}" for k, v in figures.items())
                    print(f"run {run} [{label}] {shown}", flush=True)
            os.sched_setaffinity(0, everywhere)
    print(f"medians of {args.runs} runs, {args.trips} trips each (load {os.getloadavg()[0]:.2f}):")
    for label, runs in results.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"  [{label}] " + ", ".join(f"{k}={v:.1f}" for k, v in medians.items()))


if __name__ == "__main__":
    sys.exit(main())
