"""Turn ``layerbench.py`` results into a Markdown report and PNG plots.

Usage::

    python bench/report.py --results layers.json --server server-bench.txt --out DIR [--quick]

Writes ``DIR/results.md`` (the tables, included by hand in ``docs/benchmarks/README.md``)
and ``DIR/*.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

PEERS = ["redis-core", "redis-pubsub", "nats"]
ORDER = ["chanlayer", *PEERS, "inmemory"]
LABELS = {
    "chanlayer": "chanlayer",
    "redis-core": "channels_redis core",
    "redis-pubsub": "channels_redis pubsub",
    "nats": "channels-nats",
    "inmemory": "InMemory (ceiling)",
}
#: The figure of each scenario that the ratios compare, and whether higher is better.
HEADLINE = {
    "sequential": ("msgs_per_s", True),
    "concurrent": ("msgs_per_s", True),
    "channels": ("msgs_per_s", True),
    "mp_channel": ("msgs_per_s", True),
}


def headline(key: str) -> tuple[str, bool]:
    """The compared figure of scenario ``key`` and whether higher is better."""
    if key in HEADLINE:
        return HEADLINE[key]
    if key.startswith("payload_"):
        return "mb_per_s", True
    return "p50_ms", False  # group scenarios


def fmt(value: float) -> str:
    """A figure with a sensible number of digits and thin thousands separators."""
    if value >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(entry: dict[str, Any], key: str) -> str:
    """One table cell: the headline figure, its latency, or why there is none."""
    if "skipped" in entry:
        return f"n/a ({entry['skipped']})"
    if "error" in entry:
        return f"FAIL: {entry['error'][:90]}"
    med = entry["median"]
    metric, _ = headline(key)
    text = fmt(med[metric])
    if "p50_us" in med and metric == "msgs_per_s":
        text += f" (p50 {fmt(med['p50_us'])} µs, p99 {fmt(med['p99_us'])} µs)"
    elif "p50_us" in med:
        text += f" (p50 {fmt(med['p50_us'])} µs)"
    elif metric == "p50_ms":
        text += f" (p99 {fmt(med['p99_ms'])}"
        if "call_p50_ms" in med:
            text += f", call {fmt(med['call_p50_ms'])}"
        text += ")"
    return text


def value(entry: dict[str, Any], metric: str) -> float | None:
    """The median ``metric`` of a backend's entry, or None when it has none."""
    med = entry.get("median")
    return None if med is None else med.get(metric)


def ratio(mine: float, other: float, higher: bool) -> float:
    """How many times better ``mine`` is than ``other``."""
    return mine / other if higher else other / mine


def machine() -> str:
    """The machine the figures come from."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average at the end: {load}"
    )


def versions() -> str:
    """Versions of the clients and servers measured."""
    out = []
    dists = ("chanlayer", "chanlayer-native", "channels", "channels-redis", "channels-nats")
    for dist in (*dists, "grpcio", "redis"):
        try:
            from importlib.metadata import version

            out.append(f"{dist} {version(dist)}")
        except Exception:
            pass
    for cmd in (["redis-server", "--version"], ["nats-server", "--version"]):
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
            out.append(text.strip().split("\n")[0][:60])
        except Exception:
            pass
    return ", ".join(out)


def tables(results: dict[str, Any]) -> str:
    """The Markdown tables: figures, ratios, client CPU per message."""
    lines = [
        "| scenario | " + " | ".join(LABELS[b] for b in ORDER) + " |",
        "|---|" + "---:|" * len(ORDER),
    ]
    ratio_lines = [
        "| scenario | figure | chanlayer vs best peer | best peer | chanlayer vs InMemory |",
        "|---|---|---:|---|---:|",
    ]
    cpu_lines = [
        "| scenario | " + " | ".join(LABELS[b] for b in ORDER) + " |",
        "|---|" + "---:|" * len(ORDER),
    ]
    for sc in results["scenarios"]:
        key, backends = sc["key"], sc["backends"]
        metric, higher = headline(key)
        lines.append(
            f"| {sc['title']} | "
            + " | ".join(cell(backends.get(b, {"skipped": "not run"}), key) for b in ORDER)
            + " |"
        )
        cpu_lines.append(
            f"| {sc['title']} | "
            + " | ".join(
                fmt(v) if (v := value(backends.get(b, {}), "cpu_us_per_msg")) else "—"
                for b in ORDER
            )
            + " |"
        )
        mine = value(backends.get("chanlayer", {}), metric)
        peers = {p: value(backends.get(p, {}), metric) for p in PEERS}
        peers = {p: v for p, v in peers.items() if v}
        if mine and peers:
            best = max(peers, key=lambda p: ratio(peers[p], 1, higher) if higher else -peers[p])
            vs_best = ratio(mine, peers[best], higher)
            ceiling = value(backends.get("inmemory", {}), metric)
            vs_mem = f"{ratio(mine, ceiling, higher):.2f}x" if ceiling else "—"
            verdict = "**wins**" if vs_best >= 1 else "loses"
            unit = {"msgs_per_s": "msgs/s", "mb_per_s": "MB/s", "p50_ms": "p50 ms"}[metric]
            ratio_lines.append(
                f"| {sc['title']} | {unit} | {vs_best:.2f}x ({verdict}) | {LABELS[best]} | "
                f"{vs_mem} |"
            )
    return (
        "### Figures (median of runs)\n\n"
        "Throughput rows: messages/s (or MB/s) with round-trip latency; group rows: ms until "
        "every member has the message (p50, with p99 and the `group_send` call alone).\n\n"
        + "\n".join(lines)
        + "\n\n### Ratios\n\n"
        + "Higher is better (for latency rows: the peer's latency divided by chanlayer's).\n\n"
        + "\n".join(ratio_lines)
        + "\n\n### Client CPU per message (µs, `time.process_time()` of the Python processes)\n\n"
        "Server processes (chanlayer, redis-server, nats-server) are not counted.\n\n"
        + "\n".join(cpu_lines)
        + "\n"
    )


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """Bar charts of throughput rows and group latency rows; return the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "chanlayer": "#1f77b4",
        "redis-core": "#d62728",
        "redis-pubsub": "#ff9896",
        "nats": "#2ca02c",
        "inmemory": "#7f7f7f",
    }
    made = []
    groups = {
        "throughput.png": (
            [s for s in results["scenarios"] if headline(s["key"])[0] == "msgs_per_s"],
            "msgs_per_s",
            "messages/s (log scale, higher is better)",
        ),
        "payloads.png": (
            [s for s in results["scenarios"] if s["key"].startswith("payload_")],
            "mb_per_s",
            "MB/s (log scale, higher is better)",
        ),
        "groups.png": (
            [s for s in results["scenarios"] if headline(s["key"])[0] == "p50_ms"],
            "p50_ms",
            "ms until every member has it, p50 (log scale, lower is better)",
        ),
    }
    for name, (rows, metric, ylabel) in groups.items():
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 1.9 * len(rows)), 4.2))
        width = 0.8 / len(ORDER)
        for i, backend in enumerate(ORDER):
            xs, ys = [], []
            for j, sc in enumerate(rows):
                v = value(sc["backends"].get(backend, {}), metric)
                if v:
                    xs.append(j + (i - len(ORDER) / 2 + 0.5) * width)
                    ys.append(v)
            ax.bar(xs, ys, width, label=LABELS[backend], color=colors[backend])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([sc["title"] for sc in rows], fontsize=7, rotation=12)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)
    return made


def _opt(value: float | None, scale: float = 1.0) -> str:
    """A figure that may be missing (an older result line, or no profile samples)."""
    return "—" if value is None else fmt(value * scale)


def websocket_table(path: str) -> str:
    """The end-to-end WebSocket table from ``websocket.jsonl`` (one line per layer)."""
    if not path or not Path(path).is_file():
        return ""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: ORDER.index(r["layer"]) if r["layer"] in ORDER else len(ORDER))
    if not rows:
        return ""
    first = next((r["figures"] for r in rows if "figures" in r), {})
    clients, gateways = first.get("clients", 0), first.get("gateways", 1)
    where = "daphne" if gateways == 1 else f"{gateways} daphne processes"
    mode = first.get("profile", {}).get("mode", "native")
    lines = [
        f"### WebSocket end to end: chat example on {where}, {clients} clients in one room\n",
        (
            "The members alternate between the daphne processes; the sender is on the first. "
            if gateways > 1
            else ""
        )
        + "Latency: runs of 30 messages sent one at a time, from the sender's `send` to each "
        "member's receipt (percentiles over the run's deliveries); completion: from the `send` "
        "to the last member's receipt (p50 and p99 over the run's messages). Each figure is the "
        "median over the runs, with every run's latency p99 in parentheses. Throughput: 30 "
        "messages sent back to back, member deliveries per second until every member has all "
        "of them. Daphne CPU: user + system CPU of the daphne processes together "
        "(`/proc/PID/stat`) over the latency runs and the burst, divided by their member "
        "deliveries. Layer share: the fraction of py-spy's samples of the daphne processes "
        f"(a separate pass repeating the same messages, `{mode}` mode, idle waits left out) "
        "whose stack holds a frame of the layer's packages; layer CPU = share x daphne CPU.\n",
        "| layer | latency p50 ms | latency p99 ms | completion p50 ms | completion p99 ms | "
        "deliveries/s | daphne CPU per delivery µs | layer share % | "
        "layer CPU per delivery µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(
                f"| {LABELS.get(row['layer'], row['layer'])} | FAIL: {row['error']} |" + " — |" * 7
            )
            continue
        f = row["figures"]
        p99 = fmt(f["latency_p99_ms"])
        if len(f.get("runs", [])) > 1:
            p99 += " (" + ", ".join(fmt(run["latency_p99_ms"]) for run in f["runs"]) + ")"
        lines.append(
            f"| {LABELS.get(row['layer'], row['layer'])} | {fmt(f['latency_p50_ms'])} | "
            f"{p99} | {fmt(f['last_member_p50_ms'])} | {_opt(f.get('last_member_p99_ms'))} | "
            f"{fmt(f['deliveries_per_s'])} | {_opt(f.get('daphne_cpu_us_per_delivery'))} | "
            f"{_opt(f.get('layer_share'), 100)} | {_opt(f.get('layer_cpu_us_per_delivery'))} |"
        )
    return "\n".join(lines) + "\n\n"


def main() -> None:
    """Write the report and the plots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--server", default="")
    parser.add_argument("--websocket", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = plots(results, out)
    # A run of some parts only (BENCH_PARTS) has no server-side figures.
    server = Path(args.server).read_text() if args.server and Path(args.server).is_file() else ""
    text = (
        f"## Results ({results['mode']} mode, median of {results['runs']} runs)\n\n"
        f"Machine: {machine()}.\n\nVersions: {versions()}.\n\n"
        + (
            f"chanlayer transport: {results['chanlayer_transport']}.\n\n"
            if "chanlayer_transport" in results
            else ""
        )
        + tables(results)
        + "\n"
        + "".join(f"![{n}]({n})\n\n" for n in made)
        + websocket_table(args.websocket)
        + (
            "### Server-side load generator (`chanlayer-loadgen`)\n\n```\n" + server + "```\n"
            if server
            else ""
        )
    )
    (out / "results.md").write_text(text)
    print(f"report: {out / 'results.md'}")


if __name__ == "__main__":
    main()
