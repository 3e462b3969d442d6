"""WebSocket load on the chat example: N clients in one room, each message broadcast to all.

Client processes hold the N room members; this process holds one more connection, the
sender. Two phases:

* **warm-up**: ``--warmup-messages`` messages, one at a time, not counted: the joins'
  room-count broadcasts queued ahead of them are delivered first.
* **latency**: ``--latency-runs`` runs of ``--latency-messages`` messages, one at a time:
  each is sent once every member has the previous one. Latency is send-to-receipt per member
  (percentiles over the run's deliveries) and send-to-last-member per message (the run's
  median). Each figure is the median over the runs, which are listed too: on a noisy machine
  one slow broadcast moves a single run's p99.
* **throughput**: ``--burst-messages`` messages sent back to back; the figure is member
  deliveries per second until every member has all of them.

Every member must get every message exactly once and in order (one sender, one group);
anything else fails the run. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import sys
import time
from typing import Any

import websockets

CONNECT_BATCH = 20
#: The room is quiet when no member received anything for this long.
QUIET_SECONDS = 3.0


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _members(url: str, origin: str, count: int, shared: dict[str, Any]) -> dict[str, Any]:
    """Hold ``count`` members; record when each chat message arrives."""
    received = shared["received"]
    last_frame = shared["last_frame"]
    got: list[list[tuple[str, float]]] = [[] for _ in range(count)]
    bad: list[str] = []

    async def member(index: int, ws: Any) -> None:
        try:
            await read(index, ws)
        finally:
            if not shared["done"].is_set():  # the server closed it: the app failed
                with shared["lost"].get_lock():
                    shared["lost"].value += 1

    async def read(index: int, ws: Any) -> None:
        async for frame in ws:
            now = time.monotonic()
            last_frame.value = now
            data = json.loads(frame)
            text = data.get("message")
            if text is None:
                continue  # room counts
            if not text.startswith("bench "):
                bad.append(text[:60])
                continue
            got[index].append((text, now))
            slot = int(text.split()[2])
            with received.get_lock():
                received[slot] += 1

    sockets = []
    for start in range(0, count, CONNECT_BATCH):
        batch = range(start, min(count, start + CONNECT_BATCH))
        sockets += await asyncio.gather(
            *(
                websockets.connect(
                    url, origin=origin, open_timeout=300, ping_interval=None, max_queue=None
                )
                for _ in batch
            )
        )
    tasks = [asyncio.create_task(member(i, ws)) for i, ws in enumerate(sockets)]
    with shared["connected"].get_lock():
        shared["connected"].value += count
    while not shared["done"].is_set():
        await asyncio.sleep(0.05)
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"got": got, "bad": bad}


def _member_process(url: str, origin: str, count: int, shared: dict[str, Any], out: Any) -> None:
    try:
        out.put(asyncio.run(_members(url, origin, count, shared)))
    except BaseException as exc:  # report every failure to the parent
        out.put({"error": repr(exc)})


async def _drive(
    args: argparse.Namespace, shared: dict[str, Any], procs: list[Any]
) -> dict[str, Any]:
    received, n = shared["received"], args.clients
    deadline = time.monotonic() + args.timeout

    def check_lost() -> None:
        if shared["lost"].value:
            raise RuntimeError(f"the server closed {shared['lost'].value} member connections")

    while shared["connected"].value < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{shared['connected'].value} of {n} members connected")
        if not all(proc.is_alive() for proc in procs):
            raise RuntimeError("a member process ended while connecting")
        check_lost()
        await asyncio.sleep(0.1)
    ws = await websockets.connect(
        args.url, origin=args.origin, open_timeout=300, ping_interval=None, max_queue=None
    )
    drain = asyncio.create_task(_drain(ws))
    # The joins broadcast room counts: wait for the room to be quiet.
    while time.monotonic() - shared["last_frame"].value < QUIET_SECONDS:
        if time.monotonic() > deadline:
            raise TimeoutError("the room did not get quiet after the joins")
        check_lost()
        await asyncio.sleep(0.1)
    sent: dict[int, float] = {}
    slot = 0
    per_message = []
    for _ in range(args.warmup_messages + args.latency_messages * args.latency_runs):
        sent[slot] = time.monotonic()
        await ws.send(json.dumps({"message": f"bench lat {slot} x"}))
        while received[slot] < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"message {slot}: {received[slot]} of {n} members")
            check_lost()
            await asyncio.sleep(0.001)
        if slot >= args.warmup_messages:
            per_message.append(time.monotonic() - sent[slot])
        slot += 1
    first = slot
    burst_start = time.monotonic()
    for _ in range(args.burst_messages):
        sent[slot] = time.monotonic()
        await ws.send(json.dumps({"message": f"bench burst {slot} x"}))
        slot += 1
    while any(received[s] < n for s in range(first, slot)):
        if time.monotonic() > deadline:
            missing = sum(n - received[s] for s in range(first, slot))
            raise TimeoutError(f"burst: {missing} deliveries missing")
        check_lost()
        await asyncio.sleep(0.002)
    burst_wall = time.monotonic() - burst_start
    await asyncio.sleep(0.5)  # duplicates, if any, arrive
    drain.cancel()
    await ws.close()
    return {
        "sent": sent,
        "first_burst": first,
        "burst_wall": burst_wall,
        "per_message": per_message,
    }


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def main() -> int:
    """Run both phases and print the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws/chat/ROOM/")
    parser.add_argument("--origin", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--latency-messages", type=int, default=30, help="messages per run")
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--burst-messages", type=int, default=30)
    parser.add_argument(
        "--warmup-messages",
        type=int,
        default=3,
        help="messages sent and awaited one at a time before the latency phase, not counted",
    )
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    total = args.warmup_messages + args.latency_messages * args.latency_runs + args.burst_messages
    ctx = mp.get_context("spawn")
    shared = {
        "received": ctx.Array("l", total),
        "connected": ctx.Value("l", 0),
        "lost": ctx.Value("l", 0),
        "last_frame": ctx.Value("d", time.monotonic()),
        "done": ctx.Event(),
    }
    out = ctx.Queue()
    shares = [args.clients // args.procs] * args.procs
    shares[0] += args.clients - sum(shares)
    procs = [
        ctx.Process(target=_member_process, args=(args.url, args.origin, k, shared, out))
        for k in shares
    ]
    for proc in procs:
        proc.start()
    try:
        drive = asyncio.run(_drive(args, shared, procs))
    except Exception:
        shared["done"].set()
        for _ in procs:
            with contextlib.suppress(Exception):
                print(f"member process: {out.get(timeout=30)}"[:2000], file=sys.stderr)
        for proc in procs:
            proc.kill()
        raise
    finally:
        shared["done"].set()
    try:
        reports = [out.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        print("member process failed: " + "; ".join(errors), file=sys.stderr)
        return 1
    sent, first = drive["sent"], drive["first_burst"]
    expected = [f"bench {'lat' if s < first else 'burst'} {s} x" for s in range(total)]
    runs: list[list[float]] = [[] for _ in range(args.latency_runs)]
    problems = []
    for report in reports:
        problems += report["bad"]
        for member in report["got"]:
            texts = [t for t, _ in member]
            if texts != expected:
                problems.append(f"a member got {len(texts)} messages, not {total} in order")
                continue
            for s, (_, at) in enumerate(member):
                if args.warmup_messages <= s < first:
                    runs[(s - args.warmup_messages) // args.latency_messages].append(at - sent[s])
    if problems:
        print(f"FAILED: {len(problems)} problems, e.g. {problems[:3]}", file=sys.stderr)
        return 1
    per_message = drive["per_message"]
    per_run = [
        {
            "latency_p50_ms": pct(latencies, 0.5) * 1e3,
            "latency_p99_ms": pct(latencies, 0.99) * 1e3,
            "last_member_p50_ms": statistics.median(
                per_message[r * args.latency_messages : (r + 1) * args.latency_messages]
            )
            * 1e3,
        }
        for r, latencies in enumerate(runs)
    ]
    figures: dict[str, Any] = {"clients": args.clients, "latency_runs": len(per_run)}
    for key in ("latency_p50_ms", "latency_p99_ms", "last_member_p50_ms"):
        figures[key] = statistics.median(run[key] for run in per_run)
    figures["deliveries_per_s"] = args.clients * args.burst_messages / drive["burst_wall"]
    figures["broadcasts_per_s"] = args.burst_messages / drive["burst_wall"]
    figures["runs"] = per_run
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
