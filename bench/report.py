"""The suite's report: report.json (every number), report.md (the summary) and PNG plots."""

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

# No display on servers and in CI: render straight to files.
matplotlib.use("Agg")
from matplotlib import pyplot

from bench.suite import KEPT_UP_SHARE, LATENCY_CLIP_MS

PLOTS = ("latency_percentiles.png", "throughput_vs_baseline.png", "engine_stages.png")


def write(result: dict[str, Any], directory: Path) -> Path:
    """Write the report files into `directory`; returns the Markdown file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(result, indent=2))
    _plot_latency(result["http"], directory / PLOTS[0])
    _plot_throughput(result["http"], directory / PLOTS[1])
    _plot_engine(result["engine"], directory / PLOTS[2])
    markdown = directory / "report.md"
    markdown.write_text(summary(result))
    return markdown


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"# pyjit benchmark report ({result['scale']})",
        "",
        f"Data: {result['data']['file']} ({result['data']['transactions']} transactions). "
        f"Machine: {result['machine']['cpus']} CPUs, load average "
        f"{result['machine']['load_average_at_start']} at start and "
        f"{result['machine']['load_average_at_end']} at the end; the suite took "
        f"{result['seconds']} s. Absolute figures vary between machines and with other work "
        "on this one; the ratios are measured in the same run under the same load.",
        "",
        *_ratio_lines(result["ratios"]),
        "",
        "## HTTP JIT load",
        "",
        "Fixed rates measure each latency from the message's due time (no coordinated "
        "omission); saturation runs keep a fixed number of requests in flight and measure "
        "from each send.",
        "",
        "| run | messages | throughput/s | kept up | p50 ms | p90 ms | p99 ms | p99.9 ms "
        "| max ms | errors | reconciled |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, run in result["http"].items():
        latency = {key: _ms(value) for key, value in run["latency_ms"].items()}
        available = run.get("reconciliation_available", True)
        reconciled = "yes" if run["reconciled"] else "NO" if available else "n/a"
        kept_up = "n/a" if run["rate_target_per_second"] is None else _yes(run["kept_up"])
        lines.append(
            f"| {name} | {run['messages_sent']} | {run['throughput_per_second']:.0f} "
            f"| {kept_up} | {latency['p50']} | {latency['p90']} | {latency['p99']} "
            f"| {latency['p99.9']} | {latency['max']} | {run['errors']} | {reconciled} |"
        )
    lines += [
        "",
        f"A figure marked >= is the load generator's ceiling ({LATENCY_CLIP_MS:.0f} ms): the "
        "latency was that or more. A fixed-rate run that did not keep up delivered under "
        f"{KEPT_UP_SHARE:.0%} of its rate; its latencies, measured from due times, include "
        "the queue that built up.",
    ]
    lines += ["", *_engine_lines(result["engine"]), "", *_recovery_lines(result)]
    lines += ["", *_grpc_lines(result["grpc"]), ""]
    lines += [f"![{name}]({name})" for name in PLOTS]
    return "\n".join(lines) + "\n"


def _ms(value: float) -> str:
    return f">= {value:.0f}" if value >= LATENCY_CLIP_MS else f"{value:.3f}"


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def _ratio_lines(ratios: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## Against the baseline (SELECT ... FOR UPDATE per swipe)", ""]
    for load, ratio in ratios.items():
        # A clipped baseline p99 makes ours/its an upper bound; a clipped own p99, a lower.
        bound = "at most " if ratio["baseline_p99_clipped"] else ""
        bound = "at least " if ratio["ours_p99_clipped"] else bound
        if ratio["ours_p99_clipped"] and ratio["baseline_p99_clipped"]:
            bound = "unknown, both at the ceiling: "
        lines.append(
            f"- {load}: our throughput is **{ratio['throughput']:.2f}x** the baseline's, "
            f"our p99 {bound}**{ratio['p99']:.3f}x** its p99"
        )
    lines.append("- targets (DESIGN.md): throughput >= 10x, p99 <= 0.2x")
    return lines


def _engine_lines(engine: dict[str, Any]) -> list[str]:
    lines = [
        f"## Engine ({engine['decisions']} decisions)",
        "",
        "| stage | p50 us | p99 us | p99.9 us | per second |",
        "|---|---:|---:|---:|---:|",
    ]
    for source in ("rust", "binding"):
        for name, stage in engine[source]["stages"].items():
            lines.append(
                f"| {source}: {name} | {stage['p50_us']:.2f} | {stage['p99_us']:.2f} "
                f"| {stage['p99_9_us']:.2f} | {stage['per_second']:.0f} |"
            )
    return lines


def _recovery_lines(result: dict[str, Any]) -> list[str]:
    recovery = result["recovery"]
    rust = result["engine"]["rust"]["recovery"] or {}
    return [
        "## Recovery",
        "",
        f"- gateway after SIGKILL, no snapshot: {recovery['entries_applied']} journal entries "
        f"replayed at {recovery['entries_per_second']:,} entries/s (process start to ready "
        f"{recovery['process_start_to_ready_s']} s)",
        f"- engine alone (Rust): {rust.get('entries', 0)} entries at "
        f"{rust.get('entries_per_second', 0):,.0f} entries/s",
    ]


def _grpc_lines(grpc: dict[str, Any]) -> list[str]:
    if not grpc.get("available"):
        return ["## gRPC", "", f"- not measured: {grpc.get('why')}"]
    lines = ["## gRPC (bench/grpc.py)", ""]
    lines += ["| run | messages | throughput/s | p50 ms | p90 ms | p99 ms |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for name, run in grpc.items():
        if not isinstance(run, dict) or "latency_ms" not in run:
            continue
        latency = run["latency_ms"]
        lines.append(
            f"| {name} | {run.get('messages', '')} | {run['throughput_per_second']:.0f} "
            f"| {latency['p50']:.3f} | {latency['p90']:.3f} | {latency['p99']:.3f} |"
        )
    hop = grpc.get("edge_hop_ratio")
    if hop:
        lines.append("")
        lines.append(
            f"- HTTP through an edge to a decider: {hop['throughput']:.2f}x the all-in-one "
            f"throughput, {hop['p99']:.2f}x its p99"
        )
    failover = (grpc.get("failover") or {}).get("primary_killed_to_first_standby_answer_s")
    if failover is not None:
        lines.append(f"- failover: primary killed to first standby answer in {failover:.3f} s")
    return lines


def _plot_latency(http: dict[str, Any], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(8, 5))
    for name, run in http.items():
        # Percentile on a log scale of "nines": 90 -> 1, 99 -> 2, 99.9 -> 3.
        points = [(q, ms) for q, ms in run["curve_ms"] if q < 100]
        nines = [_nines(q) for q, _ in points]
        axes.plot(nines, [ms for _, ms in points], marker="o", label=name)
    ticks = [0, 1, 2, 3, 4]
    axes.set_xticks(ticks, ["0%", "90%", "99%", "99.9%", "99.99%"])
    axes.set_yscale("log")
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.set_title("JIT latency by percentile")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _nines(percentile: float) -> float:
    return -math.log10(max(1 - percentile / 100, 1e-6))


def _plot_throughput(http: dict[str, Any], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(8, 4))
    names = list(http)
    values = [http[name]["throughput_per_second"] for name in names]
    colors = ["tab:gray" if "baseline" in name else "tab:blue" for name in names]
    axes.barh(names, values, color=colors)
    axes.set_xlabel("decisions per second")
    axes.set_title("Throughput: ours (blue) and the baseline (gray)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _plot_engine(engine: dict[str, Any], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(8, 4))
    names, p50, p99 = [], [], []
    for source in ("rust", "binding"):
        for name, stage in engine[source]["stages"].items():
            names.append(f"{source}: {name}")
            p50.append(stage["p50_us"])
            p99.append(stage["p99_us"])
    positions = range(len(names))
    axes.barh([p + 0.2 for p in positions], p50, height=0.4, label="p50")
    axes.barh([p - 0.2 for p in positions], p99, height=0.4, label="p99")
    axes.set_yticks(list(positions), names, fontsize="small")
    axes.set_xscale("log")
    axes.set_xlabel("microseconds")
    axes.set_title("Engine stages")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
