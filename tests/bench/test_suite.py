"""Proves the benchmark suite runs end to end and its results are right, on a few hundred
messages: every HTTP run answered every message without error and (ours) reconciles to the
cent, the percentiles are ordered, the ratios are the quotients of the figures they come
from, recovery replayed the whole journal, the engine figures were read, and the report's
JSON, Markdown and PNG files exist. It never judges a timing."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import suite

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--fast", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "# pyjit benchmark report (fast)" in done.stdout
    return json.loads((out / "report.json").read_text()), out


def test_every_http_run_is_complete_and_ordered(report: tuple[dict[str, Any], Path]) -> None:
    result, _ = report
    runs = result["http"]
    assert set(runs) == {
        "ours at 1000/s",
        "ours at 3000/s",
        "ours at saturation",
        "baseline at 1000/s",
        "baseline at saturation",
    }
    for name, run in runs.items():
        assert run["errors"] == 0, name
        assert run["messages_sent"] > 0 and run["latency_count"] == run["messages_sent"], name
        latency = run["latency_ms"]
        ordered = [latency[key] for key in ("p50", "p90", "p99", "p99.9", "max")]
        assert ordered == sorted(ordered) and ordered[0] > 0, name
        if name.startswith("ours"):
            assert run["reconciled"] and run["reconciliation_available"], name
        else:
            # The baseline keeps no read models: nothing to reconcile, and the report says so.
            assert not run["reconciliation_available"], name
        if run["rate_target_per_second"] is None:
            assert run["kept_up"] is True, name
        assert run["latency_clipped"] == (latency["max"] >= suite.LATENCY_CLIP_MS), name
    # Each transaction is at least one message; approvals add their clearing or reversal.
    for name, run in runs.items():
        assert run["messages_sent"] >= run["transactions"], name


def test_ratios_are_quotients_of_the_same_run(report: tuple[dict[str, Any], Path]) -> None:
    result, _ = report
    runs = result["http"]
    for load, ours, base in (
        ("saturation", "ours at saturation", "baseline at saturation"),
        ("at 1000/s", "ours at 1000/s", "baseline at 1000/s"),
    ):
        ratio = result["ratios"][load]
        expected = runs[ours]["throughput_per_second"] / runs[base]["throughput_per_second"]
        assert ratio["throughput"] == pytest.approx(expected, rel=1e-2)
        expected = runs[ours]["latency_ms"]["p99"] / runs[base]["latency_ms"]["p99"]
        assert ratio["p99"] == pytest.approx(expected, rel=1e-2)


def test_recovery_replayed_the_whole_journal(report: tuple[dict[str, Any], Path]) -> None:
    recovery = report[0]["recovery"]
    assert recovery["ok"] is True
    assert recovery["entries_applied"] == recovery["journal_entries"] > 0


def test_engine_figures_were_read(report: tuple[dict[str, Any], Path]) -> None:
    engine = report[0]["engine"]
    rust, binding = engine["rust"], engine["binding"]
    assert {"parse (2 KB body)", "decide (parsed message)"} <= set(rust["stages"])
    assert all(stage["n"] == engine["decisions"] for stage in rust["stages"].values())
    assert rust["recovery"]["digest_equal"] and rust["recovery"]["entries"] > 0
    assert "Engine.decide (parse+decide+entry)" in binding["stages"]
    for stage in [*rust["stages"].values(), *binding["stages"].values()]:
        assert 0 < stage["p50_us"] <= stage["p99_us"] <= stage["p99_9_us"]


def test_grpc_runs_are_complete_when_measured(report: tuple[dict[str, Any], Path]) -> None:
    grpc = report[0]["grpc"]
    if not grpc["available"]:
        assert grpc["why"]
        return
    for name in ("unary", "streaming"):
        run = grpc[name]
        latency = run["latency_ms"]
        ordered = [latency[key] for key in ("p50", "p90", "p99")]
        assert run["messages"] > 0 and ordered == sorted(ordered) and ordered[0] > 0, name


def test_report_files_exist(report: tuple[dict[str, Any], Path]) -> None:
    result, out = report
    markdown = (out / "report.md").read_text()
    assert "our throughput is" in markdown and "our p99" in markdown
    assert result["grpc"]["available"] or "gRPC" in markdown
    for png in ("latency_percentiles.png", "throughput_vs_baseline.png", "engine_stages.png"):
        assert (out / png).read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({png})" in markdown
