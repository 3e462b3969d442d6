"""WebSocket load on the chat example: N clients in one room, each message broadcast to all.

The room's members are spread round-robin over one or more gateways (``--url``, e.g. two
daphne processes on the same layer), so that a broadcast crosses the channel layer from the
sender's gateway to every gateway. Client processes hold the N members; this process holds
one more connection, the sender, on the first URL. The phases:

* **warm-up**: ``--warmup-messages`` messages, one at a time, not counted: the joins'
  room-count broadcasts queued ahead of them are delivered first.
* **latency**: ``--latency-runs`` runs of ``--latency-messages`` messages, one at a time:
  each is sent once every member has the previous one. Latency is send-to-receipt per member
  (percentiles over the run's deliveries) and completion, send-to-last-member, per message
  (p50 and p99 over the run's messages). Each figure is the median over the runs, which are
  listed too: on a noisy machine one slow broadcast moves a single run's p99.
* **throughput**: ``--burst-messages`` messages sent back to back; the figure is member
  deliveries per second until every member has all of them.
* **profile pass** (``--profile-pass``): the latency runs and the burst again, with py-spy
  sampling every ``--daphne-pid``. Its samples give the layer's share of the gateways' CPU;
  the figures above come from the passes before it, without py-spy.

With ``--daphne-pid`` (repeatable), the gateways' CPU (utime + stime of /proc/PID/stat, all
of them together) is read before and after the latency and throughput phases and divided by
the member deliveries of those phases: CPU per delivered WebSocket message. The sender's own
copy of each message is not counted as a delivery.

Every member must get every message exactly once and in order (one sender, one group);
anything else fails the run. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets

CONNECT_BATCH = 20
#: The room is quiet when no member received anything for this long.
QUIET_SECONDS = 3.0
#: The packages whose frames make up each layer in a profile.
LAYER_PACKAGES = {
    "chanlayer": ("chanlayer", "chanlayer_native"),
    "redis-core": ("channels_redis", "redis"),
    "redis-pubsub": ("channels_redis", "redis"),
    "nats": ("channels_nats", "nats"),
}
#: Native frames of chanlayer's extension: its symbols, the unresolved frames of its shared
#: library, and the sources of its crate as recorded in the library's debug information.
NATIVE_MARKERS = {"chanlayer": ("chanlayer_native", "clients/python/native/src/")}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def origin_of(url: str) -> str:
    """The HTTP origin of a ws:// or wss:// URL (what a browser on that page sends)."""
    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids`` together."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


async def _members(urls: list[str], origin: str | None, shared: dict[str, Any]) -> dict[str, Any]:
    """Hold one member per entry of ``urls``; record when each chat message arrives."""
    received = shared["received"]
    last_frame = shared["last_frame"]
    count = len(urls)
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
        sockets += await asyncio.gather(
            *(
                websockets.connect(
                    url,
                    origin=origin or origin_of(url),
                    open_timeout=300,
                    ping_interval=None,
                    max_queue=None,
                )
                for url in urls[start : start + CONNECT_BATCH]
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


def _member_process(urls: list[str], origin: str | None, shared: dict[str, Any], out: Any) -> None:
    try:
        out.put(asyncio.run(_members(urls, origin, shared)))
    except BaseException as exc:  # report every failure to the parent
        out.put({"error": repr(exc)})


class Profiler:
    """py-spy recording each gateway process until stopped."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        """Prepare one recording per ``--daphne-pid`` into ``workdir``."""
        self.args = args
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[int, subprocess.Popen[bytes], Path, Path]] = []

    def start(self) -> None:
        """Start py-spy on every gateway and return once each one samples."""
        flags = ["--native"] if self.args.profile_mode == "native" else ["--nonblocking"]
        for pid in self.args.daphne_pid:
            out, log = self.workdir / f"py-spy-{pid}.txt", self.workdir / f"py-spy-{pid}.log"
            cmd = [
                self.args.py_spy, "record", *flags, "--format", "raw", "--full-filenames",
                "--rate", str(self.args.profile_rate), "--pid", str(pid), "--output", str(out),
            ]  # fmt: skip
            with log.open("wb") as sink:
                proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
            self.procs.append((pid, proc, out, log))
        deadline = time.monotonic() + 30
        for _, proc, _, log in self.procs:
            while b"Sampling process" not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"py-spy did not start: {log.read_text()[-500:]}")
                time.sleep(0.05)

    def stop(self) -> dict[int, Path]:
        """Stop every recording (SIGINT writes the profile); return each pid's profile."""
        for _, proc, _, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        done = {}
        for pid, proc, out, log in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if not out.is_file():
                raise RuntimeError(f"py-spy wrote no profile: {log.read_text()[-500:]}")
            done[pid] = out
        self.procs = []
        return done


def _frame_location(frame: str) -> tuple[str, str]:
    """Split a py-spy frame ``name (file:line)`` into its name and its file."""
    cut = frame.rfind(" (")
    if cut < 0 or not frame.endswith(")"):
        return frame, ""
    name, where = frame[:cut], frame[cut + 2 : -1]
    head, _, line = where.rpartition(":")
    return name, head if head and line.isdigit() else where


def layer_share(profiles: dict[int, Path], layer: str, idle_filter: bool) -> dict[str, Any]:
    """The samples of ``profiles`` (py-spy raw) whose stack holds one of ``layer``'s frames.

    ``idle_filter`` drops the samples of a thread waiting for work (innermost Python frame in
    a selector's ``select`` or in the thread pool's ``_worker``): in native mode py-spy stops
    the process at every sample and reports those waits as active.
    """
    dirs = []
    for package in LAYER_PACKAGES[layer]:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {package} of layer {layer} is not installed")
        dirs += [str(Path(d).resolve()) + os.sep for d in spec.submodule_search_locations]
    markers = NATIVE_MARKERS.get(layer, ())
    samples = idle = in_layer = 0
    per_pid = {}
    for pid, path in profiles.items():
        pid_samples = pid_layer = 0
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_location(f) for f in stack.split(";")]
            python = [(n, f) for n, f in frames if f.endswith(".py")]
            if idle_filter and python:
                name, file = python[-1]
                if (file.endswith("selectors.py") and name.endswith(".select")) or (
                    file.endswith("concurrent/futures/thread.py") and name == "_worker"
                ):
                    idle += count
                    continue
            pid_samples += count
            if any(f.startswith(tuple(dirs)) for _, f in frames) or any(
                m in n or m in f for n, f in frames for m in markers
            ):
                pid_layer += count
        samples += pid_samples
        in_layer += pid_layer
        per_pid[str(pid)] = {"samples": pid_samples, "layer_samples": pid_layer}
    return {
        "samples": samples,
        "idle_samples_dropped": idle,
        "layer_samples": in_layer,
        "layer_share": in_layer / samples if samples else None,
        "per_pid": per_pid,
    }


async def _drive(
    args: argparse.Namespace, shared: dict[str, Any], procs: list[Any], labels: list[str]
) -> dict[str, Any]:
    received, n = shared["received"], args.clients
    deadline = time.monotonic() + args.timeout
    measured = args.latency_messages * args.latency_runs

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
        args.urls[0],
        origin=args.origin or origin_of(args.urls[0]),
        open_timeout=300,
        ping_interval=None,
        max_queue=None,
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

    async def one_at_a_time(count: int) -> list[float]:
        """Send ``count`` messages, each once every member has the previous one."""
        nonlocal slot
        took = []
        for _ in range(count):
            sent[slot] = time.monotonic()
            await ws.send(json.dumps({"message": f"bench {labels[slot]} {slot} x"}))
            while received[slot] < n:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"message {slot}: {received[slot]} of {n} members")
                check_lost()
                await asyncio.sleep(0.001)
            took.append(time.monotonic() - sent[slot])
            slot += 1
        return took

    async def burst(count: int) -> float:
        """Send ``count`` messages back to back; return the time until all are delivered."""
        nonlocal slot
        first, start = slot, time.monotonic()
        for _ in range(count):
            sent[slot] = time.monotonic()
            await ws.send(json.dumps({"message": f"bench {labels[slot]} {slot} x"}))
            slot += 1
        while any(received[s] < n for s in range(first, slot)):
            if time.monotonic() > deadline:
                missing = sum(n - received[s] for s in range(first, slot))
                raise TimeoutError(f"burst: {missing} deliveries missing")
            check_lost()
            await asyncio.sleep(0.002)
        return time.monotonic() - start

    pids = args.daphne_pid
    await one_at_a_time(args.warmup_messages)
    cpu_start = cpu_seconds(pids) if pids else 0.0
    per_message = await one_at_a_time(measured)
    first = slot
    cpu_burst = cpu_seconds(pids) if pids else 0.0
    burst_wall = await burst(args.burst_messages)
    cpu_end = cpu_seconds(pids) if pids else 0.0
    result: dict[str, Any] = {
        "sent": sent,
        "first_burst": first,
        "burst_wall": burst_wall,
        "per_message": per_message,
        "cpu_measured": cpu_end - cpu_start,
        "cpu_burst": cpu_end - cpu_burst,
    }
    if args.profile_pass:
        with tempfile.TemporaryDirectory(prefix="wsload-profile-") as tmp:
            profiler = Profiler(args, Path(args.profile_out or tmp))
            try:
                profiler.start()
                cpu_start = cpu_seconds(pids)
                profile_start = time.monotonic()
                await one_at_a_time(measured)
                await burst(args.burst_messages)
                result["cpu_profiled"] = cpu_seconds(pids) - cpu_start
                result["profile_wall"] = time.monotonic() - profile_start
            finally:
                profiles = profiler.stop()
            result["profile"] = layer_share(
                profiles, args.layer, idle_filter=args.profile_mode == "native"
            )
    await asyncio.sleep(0.5)  # duplicates, if any, arrive
    drain.cancel()
    await ws.close()
    return result


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def default_py_spy() -> str:
    """py-spy next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else (shutil.which("py-spy") or "py-spy")


def main() -> int:
    """Run the phases and print the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="ws://127.0.0.1:PORT/ws/chat/ROOM/ of a gateway; repeat it, or separate URLs "
        "with commas, to spread the members over several gateways (the sender is on the first)",
    )
    parser.add_argument(
        "--origin", help="the Origin header of every connection (default: each URL's own)"
    )
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
    parser.add_argument(
        "--daphne-pid",
        type=int,
        action="append",
        default=[],
        help="a gateway process whose CPU is measured (and profiled); repeatable",
    )
    parser.add_argument(
        "--profile-pass",
        action="store_true",
        help="repeat the latency runs and the burst with py-spy on every --daphne-pid",
    )
    parser.add_argument("--layer", choices=sorted(LAYER_PACKAGES), help="the layer profiled")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples/s")
    parser.add_argument(
        "--profile-mode",
        choices=["native", "nonblocking"],
        default="native",
        help="native: py-spy --native (it stops the process at each sample); nonblocking: "
        "Python frames only, without stopping it",
    )
    parser.add_argument("--profile-out", help="keep py-spy's raw profiles in this directory")
    parser.add_argument("--py-spy", default=default_py_spy(), help="the py-spy executable")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    args.urls = [u.strip() for arg in args.url for u in arg.split(",") if u.strip()]
    if not args.urls:
        parser.error("--url: no URL given")
    if args.clients < 1 or args.procs < 1:
        parser.error("--clients and --procs must be at least 1")
    if args.profile_pass and not (args.daphne_pid and args.layer):
        parser.error("--profile-pass needs --daphne-pid and --layer")
    for pid in args.daphne_pid:
        if not Path(f"/proc/{pid}/stat").is_file():
            parser.error(f"--daphne-pid {pid}: no such process")
    measured = args.latency_messages * args.latency_runs
    labels = ["lat"] * (args.warmup_messages + measured) + ["burst"] * args.burst_messages
    if args.profile_pass:
        labels += ["plat"] * measured + ["pburst"] * args.burst_messages
    total = len(labels)
    ctx = mp.get_context("spawn")
    shared = {
        "received": ctx.Array("l", total),
        "connected": ctx.Value("l", 0),
        "lost": ctx.Value("l", 0),
        "last_frame": ctx.Value("d", time.monotonic()),
        "done": ctx.Event(),
    }
    out = ctx.Queue()
    # Member i is on gateway i mod len(urls); the client processes take consecutive members.
    member_urls = [args.urls[i % len(args.urls)] for i in range(args.clients)]
    shares = [args.clients // args.procs] * args.procs
    shares[0] += args.clients - sum(shares)
    bounds = [sum(shares[:k]) for k in range(len(shares) + 1)]
    procs = [
        ctx.Process(
            target=_member_process,
            args=(member_urls[bounds[k] : bounds[k + 1]], args.origin, shared, out),
        )
        for k in range(len(shares))
        if shares[k]
    ]
    for proc in procs:
        proc.start()
    try:
        drive = asyncio.run(_drive(args, shared, procs, labels))
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
    expected = [f"bench {label} {s} x" for s, label in enumerate(labels)]
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
    per_run = []
    for r, latencies in enumerate(runs):
        completions = per_message[r * args.latency_messages : (r + 1) * args.latency_messages]
        per_run.append(
            {
                "latency_p50_ms": pct(latencies, 0.5) * 1e3,
                "latency_p99_ms": pct(latencies, 0.99) * 1e3,
                "last_member_p50_ms": statistics.median(completions) * 1e3,
                "last_member_p99_ms": pct(completions, 0.99) * 1e3,
            }
        )
    figures: dict[str, Any] = {
        "clients": args.clients,
        "gateways": len(args.urls),
        "latency_runs": len(per_run),
    }
    for key in ("latency_p50_ms", "latency_p99_ms", "last_member_p50_ms", "last_member_p99_ms"):
        figures[key] = statistics.median(run[key] for run in per_run)
    figures["deliveries_per_s"] = args.clients * args.burst_messages / drive["burst_wall"]
    figures["broadcasts_per_s"] = args.burst_messages / drive["burst_wall"]
    deliveries = args.clients * (measured + args.burst_messages)
    if args.daphne_pid:
        figures["daphne_processes"] = len(args.daphne_pid)
        figures["daphne_cpu_s"] = drive["cpu_measured"]
        figures["daphne_cpu_us_per_delivery"] = drive["cpu_measured"] / deliveries * 1e6
        figures["daphne_cpu_us_per_delivery_burst"] = (
            drive["cpu_burst"] / (args.clients * args.burst_messages) * 1e6
        )
    if "profile" in drive:
        profile = drive["profile"]
        profile.update(
            mode=args.profile_mode,
            rate=args.profile_rate,
            wall_s=drive["profile_wall"],
            # The gateways' CPU under py-spy: its cost to the process it samples.
            daphne_cpu_us_per_delivery=drive["cpu_profiled"] / deliveries * 1e6,
        )
        figures["profile"] = profile
        share = profile["layer_share"]
        figures["layer_share"] = share
        figures["layer_cpu_us_per_delivery"] = (
            None if share is None else share * figures["daphne_cpu_us_per_delivery"]
        )
    figures["runs"] = per_run
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
