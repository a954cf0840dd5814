"""The replay report: traffic, latency, throughput and reconciliation, for people and JSON."""

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pyjit.replay import ReplayResults

PERCENTILES = (50.0, 90.0, 99.0)
SHOWN_MISMATCHES = 10


def reconcile_expectations(
    results: "ReplayResults",
    server: dict[str, Any] | None,
    accounts: list[str],
    opening_minor: int,
) -> dict[str, Any]:
    """Compare the server's three views of each account with what the answers imply."""
    if server is None:
        return {"available": False, "ok": False, "accounts": len(accounts), "mismatches": []}
    by_token = {entry["account"]: entry for entry in server["accounts"]}
    mismatches = [entry for entry in server["accounts"] if not entry.get("ok")]
    for account in accounts:
        seen = by_token.get(account)
        expected = results.expected.get(account)
        posted = opening_minor + (expected.posted_minor if expected else 0)
        held = expected.held_minor if expected else 0
        if seen is None or seen.get("posted_minor") != posted or seen.get("held_minor") != held:
            mismatches.append(
                {
                    "account": account,
                    "expected_posted_minor": posted,
                    "expected_held_minor": held,
                    "posted_minor": seen.get("posted_minor") if seen else None,
                    "held_minor": seen.get("held_minor") if seen else None,
                }
            )
    return {
        "available": True,
        "ok": not mismatches,
        "accounts": len(accounts),
        "server_mismatches": server["mismatches"],
        "mismatches": mismatches,
        "posted_minor_total": sum(entry.get("posted_minor") or 0 for entry in by_token.values()),
        "held_minor_total": sum(entry.get("held_minor") or 0 for entry in by_token.values()),
    }


def build(
    results: "ReplayResults", reconciliation: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    histogram = results.latency_us
    has_latency = histogram.get_total_count() > 0
    latency_ms = {
        f"p{int(p)}": histogram.get_value_at_percentile(p) / 1000 if has_latency else None
        for p in PERCENTILES
    }
    latency_ms["max"] = histogram.get_max_value() / 1000 if has_latency else None
    return {
        **extra,
        "messages_sent": results.sent,
        "approved": results.approved,
        "declined": sum(results.declines.values()),
        "declines_by_reason": dict(results.declines.most_common()),
        "by_method": dict(results.by_method.most_common()),
        "statuses": {str(status): n for status, n in sorted(results.statuses.items())},
        "transport_errors": dict(results.transport_errors),
        "errors": results.errors,
        "seconds": round(results.seconds, 3),
        "throughput_per_second": round(results.sent / results.seconds, 1)
        if results.seconds
        else 0.0,
        "latency_ms": latency_ms,
        "reconciliation": reconciliation,
        "ok": reconciliation["ok"] and results.errors == 0,
    }


def render(report: dict[str, Any], console: Console) -> None:
    traffic = Table(title="Replay", show_header=False)
    for label, key in (
        ("messages sent", "messages_sent"),
        ("approved (200)", "approved"),
        ("declined (402)", "declined"),
        ("errors", "errors"),
        ("seconds", "seconds"),
        ("throughput / s", "throughput_per_second"),
    ):
        traffic.add_row(label, str(report[key]))
    for name, value in report["latency_ms"].items():
        traffic.add_row(f"latency {name} (ms)", "-" if value is None else f"{value:.3f}")
    console.print(traffic)

    if report["declines_by_reason"]:
        declines = Table("decline reason", "count", title="Declines")
        for reason, count in report["declines_by_reason"].items():
            declines.add_row(reason, str(count))
        console.print(declines)
    _render_reconciliation(report["reconciliation"], console)


def _render_reconciliation(reconciliation: dict[str, Any], console: Console) -> None:
    if not reconciliation["available"]:
        console.print("[red]reconciliation unavailable: the gateway did not answer[/red]")
        return
    mismatches = reconciliation["mismatches"]
    verdict = "[green]reconciled[/green]" if reconciliation["ok"] else "[red]NOT reconciled[/red]"
    console.print(
        f"Reconciliation: {verdict} — {reconciliation['accounts']} accounts; read model, "
        f"journal deltas, engine and the replay's expectations compared; "
        f"{len(mismatches)} mismatches"
    )
    for mismatch in mismatches[:SHOWN_MISMATCHES]:
        console.print(f"  {mismatch}")
