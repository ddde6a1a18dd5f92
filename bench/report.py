"""The results table: one row per measure, FlowDesk beside its baseline, ratio and target."""

from __future__ import annotations

from dataclasses import dataclass

from bench.models import BatchStats, CampaignRun, E2ERun, IngestRun, OutboundRun

INGEST_TARGET = 0.30
E2E_TARGET = 0.50
OUTBOUND_TARGET = 0.50
CAMPAIGN_TARGET = 0.90  # of the channel's configured send rate


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
    short = {"worker": "wrk", "postgres": "pg", "sandbox": "sbx", "scheduler": "sch"}
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


def _limit(run: OutboundRun) -> str:
    return f"{run.rate_per_s:,.0f}/s burst {run.burst:,}"


def _once(run: OutboundRun) -> str:
    verdict = "ok" if run.exactly_once else "MISMATCH: not one request per message"
    return f"{run.provider_requests:,} / {run.expected_requests:,} {verdict}"


def _attempts(run: OutboundRun) -> str:
    """Provider calls per send (messages.send_attempts): a throttled try is claimed and released
    without counting, so the difference is retries after provider errors."""
    return f"{run.attempts:,} ({run.attempts - run.sends:,} retried) / {run.dead_letters}"


def outbound_rows(fd: OutboundRun, noop: E2ERun, ratios: list[float]) -> list[Row]:
    ratio = fd.sps / noop.eps
    return [
        Row(
            "outbound sends/s",
            _n(fd.sps),
            _n(noop.eps),
            f"{ratio:.2f}x",
            f">={OUTBOUND_TARGET:.2f}x" + ("" if ratio >= OUTBOUND_TARGET else " MISSED"),
        ),
        *_rounds(ratios),
        Row("  channel limit (not binding)", _limit(fd)),
        Row("  seconds", f"{fd.elapsed_s:.2f}", f"{noop.elapsed_s:.2f}"),
        Row("  enqueue->sent p50 / p99 ms", f"{fd.latency_p50_ms:.0f} / {fd.latency_p99_ms:.0f}"),
        Row("  cpu ms/send", _cpu(fd.cpu_ms_per_send), _cpu(noop.cpu_ms_per_event)),
        Row("  provider requests / messages", _once(fd)),
        Row("  send attempts / dead letters", _attempts(fd)),
    ]


def paced_rows(run: OutboundRun) -> list[Row]:
    """The channel's configured limit binding: achieved rate against it, no baseline."""
    steady = "-" if run.steady_sps is None else f"{run.steady_sps:.1f}"
    return [
        Row(f"outbound sends/s at {_limit(run)}", f"{run.sps:.1f}", target="tracks limit"),
        Row("  second half / limit", f"{steady} / {run.rate_per_s:,.0f}"),
        Row("  seconds (ideal (N-burst)/rate)", f"{run.elapsed_s:.2f} ({_ideal_s(run):.2f})"),
        Row("  enqueue->sent p50 / p99 ms", f"{run.latency_p50_ms:.0f} / {run.latency_p99_ms:.0f}"),
        Row("  cpu ms/send", _cpu(run.cpu_ms_per_send)),
        Row("  provider requests / messages", _once(run)),
        Row("  send attempts / dead letters", _attempts(run)),
    ]


def campaign_rows(run: CampaignRun) -> list[Row]:
    """Freeze rate (no baseline: one set-based statement), then sends against the channel's
    configured limit, the rate they are held to."""
    steady = "-" if run.steady_sps is None else f"{run.steady_sps:.1f}"
    ratio = f"{run.limit_ratio:.2f}x"
    once = "yes" if run.exactly_once else "NO"
    return [
        Row("campaign freeze recipients/s", _n(run.freeze_rps)),
        Row("  recipients / freeze seconds", f"{run.recipients:,} / {run.freeze_s:.2f}"),
        Row(
            f"campaign sends/s at {run.rate_per_s:g}/s burst {run.burst}",
            f"{run.sps:.1f}",
            f"{run.rate_per_s:g}",
            ratio,
            f">={CAMPAIGN_TARGET:.2f}x" + ("" if run.limit_ratio >= CAMPAIGN_TARGET else " MISSED"),
        ),
        Row("  second half / limit", f"{steady} / {run.rate_per_s:,.0f}"),
        Row("  seconds first->last sent", f"{run.send_elapsed_s:.1f}"),
        Row("  cpu ms/send", _cpu(run.cpu_ms_per_send)),
        Row(
            "  provider requests / exactly once",
            f"{run.provider_requests:,} / {once} ({run.dead_letters} dead letters)",
        ),
    ]


def _ideal_s(run: OutboundRun) -> float:
    return max(0, run.sends - run.burst) / run.rate_per_s


def table(rows: list[Row]) -> str:
    lines = [f"{'benchmark':<36}{'flowdesk':<34}{'baseline':<22}{'ratio':<8}target"]
    lines += [
        f"{r.name:<36}{r.flowdesk:<34}{r.baseline:<22}{r.ratio:<8}{r.target}".rstrip() for r in rows
    ]
    return "\n".join(lines)


def trace_table(
    trace: dict[str, dict[str, float]], *, actor: str = "process_inbox", top: int = 16
) -> str:
    """Where the FlowDesk worker's threads spent their time, by statement.

    An actor that handles one event per message counts its messages as events; a batch actor
    (process_inbox, send_messages) counts the ids it was given.
    """
    busy = trace.get(f"actor: {actor}", {}).get("seconds", 0.0) or 1.0
    counted = trace.get(f"events: {actor}") or trace.get(f"actor: {actor}", {})
    events = counted.get("count", 0.0) or 1.0
    lines = [
        f"worker trace: {events:,.0f} events, {busy:.1f} thread-s in {actor} "
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
