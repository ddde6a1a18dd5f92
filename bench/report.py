"""The results table: one row per measure, FlowDesk beside its baseline, ratio and target."""

from __future__ import annotations

from dataclasses import dataclass

from bench.models import BatchStats, E2ERun, IngestRun

INGEST_TARGET = 0.30
E2E_TARGET = 0.50


@dataclass(frozen=True)
class Row:
    name: str
    flowdesk: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _batches(stats: BatchStats | None) -> str:
    if stats is None or not stats.batches:
        return "-"
    return f"{stats.batches} x {stats.median:g} / {stats.p90:g} / {stats.max}"


def _rounds(ratios: list[float]) -> list[Row]:
    if len(ratios) < 2:
        return []
    return [Row("  ratio per round", " ".join(f"{r:.2f}x" for r in ratios))]


def _cpu(per_event: dict[str, float]) -> str:
    """`web 0.4 wrk 2.8 pg 1.2`: CPU ms per event by process group."""
    short = {"worker": "wrk", "postgres": "pg"}
    return " ".join(f"{short.get(k, k)} {v:.1f}" for k, v in per_event.items())


def ingest_rows(fd: IngestRun, bare: IngestRun, ratios: list[float]) -> list[Row]:
    ratio = fd.load.rps / bare.load.rps
    return [
        Row(
            "ingest req/s",
            _n(fd.load.rps),
            _n(bare.load.rps),
            f"{ratio:.2f}x",
            f">={INGEST_TARGET:.2f}x" + ("" if ratio >= INGEST_TARGET else " MISSED"),
        ),
        *_rounds(ratios),
        Row(
            "ingest p50 / p99 ms",
            f"{fd.load.p50_ms:.0f} / {fd.load.p99_ms:.0f}",
            f"{bare.load.p50_ms:.0f} / {bare.load.p99_ms:.0f}",
        ),
        Row(
            "  load generator cpu",
            f"{fd.load.client_cpu:.0%}",
            f"{bare.load.client_cpu:.0%}",
        ),
        Row(
            "  web cpu ms/request",
            f"{fd.web_cpu_ms_per_request:.2f}",
            f"{bare.web_cpu_ms_per_request:.2f}",
        ),
        Row("  group commits n x med/p90/max", _batches(fd.group_commits)),
    ]


def e2e_rows(fd: E2ERun, noop: E2ERun, ratios: list[float]) -> list[Row]:
    ratio = fd.eps / noop.eps
    return [
        Row(
            "inbound e2e events/s",
            _n(fd.eps),
            _n(noop.eps),
            f"{ratio:.2f}x",
            f">={E2E_TARGET:.2f}x" + ("" if ratio >= E2E_TARGET else " MISSED"),
        ),
        *_rounds(ratios),
        Row("  e2e seconds", f"{fd.elapsed_s:.2f}", f"{noop.elapsed_s:.2f}"),
        Row("  ingest req/s during e2e", _n(fd.ingest_rps or 0)),
        Row("  cpu ms/event", _cpu(fd.cpu_ms_per_event), _cpu(noop.cpu_ms_per_event)),
        Row("  group commits n x med/p90/max", _batches(fd.web_group_commits)),
        Row("  worker batches n x med/p90/max", _batches(fd.worker_batches)),
        Row("  dead letters", str(fd.dead_letters)),
    ]


def table(rows: list[Row]) -> str:
    lines = [f"{'benchmark':<34}{'flowdesk':<26}{'baseline':<20}{'ratio':<8}target"]
    lines += [
        f"{r.name:<34}{r.flowdesk:<26}{r.baseline:<20}{r.ratio:<8}{r.target}".rstrip() for r in rows
    ]
    return "\n".join(lines)


def trace_table(trace: dict[str, dict[str, float]], *, top: int = 16) -> str:
    """Where the FlowDesk worker's threads spent their time, by statement."""
    busy = trace.get("actor: process_inbox", {}).get("seconds", 0.0) or 1.0
    events = trace.get("events: process_inbox", {}).get("count", 0.0) or 1.0
    lines = [
        f"worker trace: {events:,.0f} events, {busy:.1f} thread-s in process_inbox "
        f"({1000 * busy / events:.2f} ms/event)",
        f"{'share':>6} {'calls':>7} {'ms/call':>8} {'calls/event':>11}  what",
    ]
    ranked = sorted(
        ((k, v) for k, v in trace.items() if not k.startswith("events:")),
        key=lambda kv: -kv[1]["seconds"],
    )
    for key, v in ranked[:top]:
        calls = v["count"]
        lines.append(
            f"{v['seconds'] / busy:6.1%} {calls:7,.0f} {1000 * v['seconds'] / calls:8.2f} "
            f"{calls / events:11.2f}  {key}"
        )
    return "\n".join(lines)
