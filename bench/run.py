"""`make bench`: FlowDesk ingest, inbound and outbound throughput as ratios to same-session
baselines."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import report
from bench.campaign import CAMPAIGN_LIMIT, campaign_flowdesk
from bench.infra import BenchError, Services, check_postgres, check_redis
from bench.models import OutboundRun, Plan
from bench.outbound import UNPACED, WHATSAPP_DEFAULT, outbound_flowdesk
from bench.procs import Processes
from bench.scenarios import e2e_flowdesk, e2e_noop, ingest_bare, ingest_flowdesk
from bench.targets import TUNABLES

RESULTS = Path(__file__).resolve().parent / "results"
F = TypeVar("F")
B = TypeVar("B")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="1,000 ingest requests instead of 20,000; 1,000 events instead of 5,000; "
        "500 outbound sends instead of 3,000; a campaign to 5,000 recipients instead of 100,000",
    )
    p.add_argument(
        "--rounds", type=int, help="baseline/FlowDesk pairs per comparison (default 2, quick 1)"
    )
    p.add_argument(
        "--only", choices=("ingest", "e2e", "outbound", "campaign"), help="run one comparison"
    )
    p.add_argument("--requests", type=int, help="measured ingest requests (after warm-up)")
    p.add_argument("--events", type=int, help="measured end-to-end events")
    p.add_argument("--contacts", type=int, help="distinct senders the events come from")
    p.add_argument("--sends", type=int, help="measured outbound sends (unpaced channel)")
    p.add_argument(
        "--paced-sends", type=int, help="measured outbound sends at WhatsApp's default limit"
    )
    p.add_argument("--recipients", type=int, help="the campaign's audience size")
    p.add_argument("--concurrency", type=int, default=64, help="load generator connections")
    p.add_argument("--threads", type=int, default=4, help="worker threads (both workers)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"FlowDesk setting for this run (one of {', '.join(TUNABLES)})",
    )
    p.add_argument("--pg", default=os.environ.get("FLOWDESK_BENCH_PG", "postgres@127.0.0.1:5432"))
    p.add_argument(
        "--redis", default=os.environ.get("FLOWDESK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    )
    p.add_argument(
        "--database",
        default=os.environ.get("FLOWDESK_BENCH_DB", "flowdesk_bench"),
        help="bench database, dropped and recreated per scenario (give concurrent runs their own)",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="time every SQL statement in the FlowDesk worker (slower; for profiling)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def build_plan(args: argparse.Namespace) -> Plan:
    tunables = {k: os.environ[k] for k in TUNABLES if k in os.environ}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in TUNABLES:
            raise BenchError(f"--set {item!r}: expected KEY=VALUE with KEY in {TUNABLES}")
        tunables[key] = value
    plan = Plan(
        services=Services(pg_server=args.pg, redis_url=args.redis, database=args.database),
        concurrency=args.concurrency,
        threads=args.threads,
        tunables=tunables,
        trace_path=str(RESULTS / "trace.json") if args.trace else None,
    )
    if args.quick:
        plan = replace(
            plan,
            requests=1_000,
            warmup=200,
            events=1_000,
            e2e_warmup=100,
            contacts=100,
            sends=500,
            campaign_recipients=5_000,
        )
    if args.requests:
        plan = replace(plan, requests=args.requests)
    if args.events:
        plan = replace(plan, events=args.events)
    if args.contacts:
        plan = replace(plan, contacts=args.contacts)
    if args.sends:
        plan = replace(plan, sends=args.sends)
    if args.paced_sends:
        plan = replace(plan, paced_sends=args.paced_sends)
    if args.recipients:
        plan = replace(plan, campaign_recipients=args.recipients)
    return plan


def compare(
    rounds: int,
    baseline: Callable[[], B],
    flowdesk: Callable[[], F],
    ratio: Callable[[F, B], float],
) -> tuple[F, B, list[float]]:
    """Alternate baseline and FlowDesk `rounds` times; return the lower-median pair and all ratios.

    Alternating, rather than all of one then all of the other, spreads any drift in the
    machine's load across both sides.
    """
    pairs: list[tuple[F, B]] = []
    for _ in range(rounds):
        b = baseline()
        pairs.append((flowdesk(), b))
    ratios = [ratio(f, b) for f, b in pairs]
    pick = sorted(range(len(pairs)), key=ratios.__getitem__)[(len(pairs) - 1) // 2]
    return pairs[pick][0], pairs[pick][1], ratios


def measure(plan: Plan, only: str | None, rounds: int, procs: Processes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows: list[report.Row] = []
    if only in (None, "ingest"):
        print(
            f"ingest: {rounds} x {plan.requests:,} requests over {plan.concurrency} connections",
            flush=True,
        )
        fd, bare, ratios = compare(
            rounds,
            lambda: ingest_bare(procs, plan),
            lambda: ingest_flowdesk(procs, plan),
            lambda f, b: f.load.rps / b.load.rps,
        )
        results["ingest"] = _summary(fd, bare, ratios, report.INGEST_TARGET)
        rows += report.ingest_rows(fd, bare, ratios)
    if only in (None, "e2e"):
        print(f"e2e: {rounds} x {plan.events:,} events, worker -p 1 -t {plan.threads}", flush=True)
        fde, noop, ratios = compare(
            rounds,
            lambda: e2e_noop(procs, plan),
            lambda: e2e_flowdesk(procs, plan),
            lambda f, b: f.eps / b.eps,
        )
        results["e2e"] = _summary(fde, noop, ratios, report.E2E_TARGET)
        rows += report.e2e_rows(fde, noop, ratios)
        if fde.trace:
            results["trace_table"] = report.trace_table(fde.trace)
    if only in (None, "outbound"):
        rows += _outbound(plan, rounds, procs, results)
    if only in (None, "campaign"):
        rows += _campaign(plan, procs, results)
    results["table"] = report.table(rows)
    return results


def _outbound(
    plan: Plan, rounds: int, procs: Processes, results: dict[str, Any]
) -> list[report.Row]:
    """Unpaced sends against the no-op baseline with as many messages, then one paced run."""
    print(
        f"outbound: {rounds} x {plan.sends:,} sends to the sandbox, worker -p 1 -t {plan.threads}",
        flush=True,
    )
    fd, noop, ratios = compare(
        rounds,
        lambda: e2e_noop(procs, replace(plan, events=plan.sends)),
        lambda: outbound_flowdesk(procs, plan, sends=plan.sends, limit=UNPACED),
        lambda f, b: f.sps / b.eps,
    )
    results["outbound"] = _summary(fd, noop, ratios, report.OUTBOUND_TARGET)
    limit = WHATSAPP_DEFAULT
    print(
        f"outbound paced: {plan.paced_sends:,} sends at {limit.rate_per_s:g}/s burst {limit.burst}",
        flush=True,
    )
    paced = outbound_flowdesk(procs, plan, sends=plan.paced_sends, limit=limit)
    results["outbound_paced"] = asdict(paced)
    if fd.trace:
        results["outbound_trace_table"] = report.trace_table(fd.trace, actor="send_messages")
    _check_exactly_once([fd, paced])
    results["exactly_once"] = fd.exactly_once and paced.exactly_once
    return report.outbound_rows(fd, noop, ratios) + report.paced_rows(paced)


def _campaign(plan: Plan, procs: Processes, results: dict[str, Any]) -> list[report.Row]:
    """One campaign (no baseline pair: the channel's configured limit is the yardstick)."""
    limit = CAMPAIGN_LIMIT
    print(
        f"campaign: {plan.campaign_recipients:,} recipients at {limit.rate_per_s:g}/s "
        f"burst {limit.burst}, worker -p 1 -t {plan.threads}",
        flush=True,
    )
    run = campaign_flowdesk(procs, plan, recipients=plan.campaign_recipients, limit=limit)
    results["campaign"] = asdict(run) | {"target": report.CAMPAIGN_TARGET}
    if not run.exactly_once:
        print(
            f"\nERROR: the campaign's {run.recipients} recipients got {run.provider_requests} "
            "provider requests, or a contact got two messages.",
            file=sys.stderr,
            flush=True,
        )
        results["exactly_once"] = False
    return report.campaign_rows(run)


def _check_exactly_once(runs: list[OutboundRun]) -> None:
    for run in runs:
        if not run.exactly_once:
            print(
                "\n" + "!" * 78 + f"\nERROR: the sandbox recorded {run.provider_requests} "
                f"provider requests for {run.expected_requests} messages (limit "
                f"{run.rate_per_s:g}/s), or their ids do not match the stored ones: a message "
                "was sent more or less than once.\n" + "!" * 78,
                file=sys.stderr,
                flush=True,
            )


def _summary(flowdesk: Any, baseline: Any, ratios: list[float], target: float) -> dict[str, Any]:
    """The reported (lower-median) round in full, and every round's ratio."""
    ratio = sorted(ratios)[(len(ratios) - 1) // 2]
    return {
        "flowdesk": asdict(flowdesk),
        "baseline": asdict(baseline),
        "ratio": ratio,
        "ratios": ratios,
        "target": target,
        "met": ratio >= target,
    }


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops every child


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    started = time.monotonic()
    try:
        plan = build_plan(args)
        check_postgres(plan.services)
        check_redis(plan.services)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    procs = Processes(RESULTS / "logs")
    try:
        rounds = args.rounds or (1 if args.quick else 2)
        results = measure(plan, args.only, max(1, min(rounds, 10)), procs)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        leftovers = procs.close()
        if leftovers:
            print(f"bench: killed leftover processes: {leftovers}", file=sys.stderr)
    document = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "plan": {k: v for k, v in asdict(plan).items() if k != "services"},
        **results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    print()
    print(results["table"])
    for key in ("trace_table", "outbound_trace_table"):
        if key in results:
            print("\n" + results[key])
    print(f"\n({document['duration_s']}s; JSON in {RESULTS / 'latest.json'})")
    busy = load_before[0]
    if busy > (os.cpu_count() or 1):
        print(
            f"note: load average was {busy:.1f} on {os.cpu_count()} CPUs before the run; "
            "other work shared the machine, so these numbers are noisier than usual"
        )
    if not results.get("exactly_once", True):
        print("bench: outbound sends were not exactly once (see the ERROR above)", file=sys.stderr)
        return 1
    missed = [k for k in ("ingest", "e2e", "outbound") if k in results and not results[k]["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
