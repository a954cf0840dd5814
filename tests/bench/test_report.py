"""Proves the report never states a clipped latency as a measured one: a figure at the load
generator's ceiling is printed as a bound, and a ratio built on it says which way it bounds."""

from typing import Any

from bench import report, suite


def run(p99_ms: float, throughput: float) -> dict[str, Any]:
    return {"throughput_per_second": throughput, "latency_ms": {"p99": p99_ms}}


def test_a_clipped_baseline_p99_makes_the_ratio_an_upper_bound() -> None:
    ceiling = suite.LATENCY_CLIP_MS
    ratio = suite.ratios(run(30.0, 1000.0), run(ceiling + 31, 250.0))
    assert ratio["throughput"] == 4.0
    assert ratio["baseline_p99_clipped"] and not ratio["ours_p99_clipped"]
    (line,) = [line for line in report._ratio_lines({"at 1000/s": ratio}) if "1000/s" in line]
    assert "our p99 at most **" in line
    measured = suite.ratios(run(30.0, 1000.0), run(60.0, 250.0))
    (line,) = [line for line in report._ratio_lines({"x": measured}) if line.startswith("- x")]
    assert "our p99 **0.500x**" in line


def test_figures_at_the_ceiling_print_as_bounds() -> None:
    assert report._ms(suite.LATENCY_CLIP_MS + 31).startswith(">= ")
    assert report._ms(12.3456) == "12.346"
