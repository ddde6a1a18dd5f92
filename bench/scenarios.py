"""The two comparisons, each side in its own processes: webhook ingest and inbound e2e."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import redis
from dramatiq.brokers.redis import RedisBroker

from bench import cpu, infra, noop
from bench.infra import BenchError, Services
from bench.models import BatchStats, E2ERun, IngestRun, Plan, Trace
from bench.payloads import PayloadSpec
from bench.procs import Child, Processes
from bench.targets import (
    flowdesk_env,
    load_result,
    not_failed,
    start_load,
    start_web,
    start_worker,
)

# ingest ---------------------------------------------------------------------------------


def _ingest(
    procs: Processes, plan: Plan, *, name: str, factory: str, env: dict[str, str], channel_id: int
) -> IngestRun:
    web, port = start_web(procs, f"{name}-web", factory, env)
    try:
        payload = PayloadSpec(
            f"{name}-{uuid.uuid4().hex[:6]}", plan.warmup + plan.requests, plan.contacts
        )
        cpu_before = cpu.tree_cpu_s(web.popen.pid)
        gen = start_load(
            procs,
            f"{name}-load",
            plan,
            port=port,
            channel_id=channel_id,
            payload=payload,
            warmup=plan.warmup,
        )
        result = load_result(procs, gen, plan)
        web_ms = 1000 * (cpu.tree_cpu_s(web.popen.pid) - cpu_before) / payload.count
    finally:
        procs.stop(web)
    return IngestRun(result, web_ms)


def ingest_bare(procs: Processes, plan: Plan) -> IngestRun:
    """The bare Starlette endpoint under the same server, client and concurrency."""
    return _ingest(
        procs,
        plan,
        name="bare",
        factory="bench.servers:bare_app",
        env=dict(os.environ),
        channel_id=1,
    )


def ingest_flowdesk(procs: Processes, plan: Plan) -> IngestRun:
    """FlowDesk's webhook endpoint, durable accept only: no worker runs, inbox rows pile up."""
    infra.fresh_database(plan.services)
    channel_id = infra.seed_channel(plan.services)
    prefix = infra.new_prefix("ingest")
    try:
        run = _ingest(
            procs,
            plan,
            name="flowdesk",
            factory="bench.servers:flowdesk_app",
            env=flowdesk_env(plan, prefix),
            channel_id=channel_id,
        )
    finally:
        infra.delete_prefix(plan.services, prefix)
    expected = plan.warmup + plan.requests
    stored = infra.scalar(plan.services, "SELECT count(*) FROM inbox")
    if stored != expected:
        raise BenchError(f"FlowDesk answered 2xx {expected} times but stored {stored} rows")
    commits = _group_commits(plan.services, after_id=plan.warmup)
    return IngestRun(run.load, run.web_cpu_ms_per_request, stored, commits)


def _group_commits(services: Services, *, after_id: int) -> BatchStats:
    """Rows of one group commit share their `enqueued_at` (one timestamp per flush)."""
    sizes = infra.rows(
        services,
        f"SELECT count(*) FROM inbox WHERE id > {int(after_id)} GROUP BY enqueued_at",
    )
    return BatchStats.of([int(str(r[0])) for r in sizes])


def _worker_batches(services: Services, *, after_id: int) -> BatchStats:
    """Rows processed in one worker transaction share their `processed_at` (now())."""
    sizes = infra.rows(
        services,
        f"SELECT count(*) FROM inbox WHERE id > {int(after_id)} AND processed_at IS NOT NULL "
        "GROUP BY processed_at",
    )
    return BatchStats.of([int(str(r[0])) for r in sizes])


# inbound end to end ---------------------------------------------------------------------


def e2e_flowdesk(procs: Processes, plan: Plan) -> E2ERun:
    """Webhook POST to committed message row, timed from the first POST to the last commit."""
    services = plan.services
    infra.fresh_database(services)
    channel_id = infra.seed_channel(services)
    prefix = infra.new_prefix("e2e")
    env = flowdesk_env(plan, prefix)
    module = "actors.worker_entry"
    if plan.trace_path:
        module, env = "bench.traced_worker", {**env, "BENCH_TRACE_PATH": plan.trace_path}
        Path(plan.trace_path).unlink(missing_ok=True)
    children: list[Child] = []

    def messages() -> int:
        return infra.scalar(services, "SELECT count(*) FROM messages")

    try:
        web, port = start_web(procs, "e2e-web", "bench.servers:flowdesk_app", env)
        children.append(web)
        worker = start_worker(procs, "e2e-worker", module, plan, env)
        children.append(worker)
        tag = uuid.uuid4().hex[:6]
        # Warm-up from other senders: proves the worker consumes, and fills every pool.
        warm = PayloadSpec(f"w{tag}", plan.e2e_warmup, plan.contacts, first_contact=100_000)
        gen = start_load(
            procs, "e2e-warmup-load", plan, port=port, channel_id=channel_id, payload=warm, warmup=0
        )
        load_result(procs, gen, plan)
        procs.wait_for(
            "FlowDesk warm-up messages",
            lambda: messages() >= plan.e2e_warmup,
            timeout_s=60,
            watch=children,
        )
        warm_ids = infra.scalar(services, "SELECT max(id) FROM inbox")
        warm_trace = read_trace(plan, settle_s=1.2)
        cpu_before = _flowdesk_cpu(services, web, worker)
        target = plan.e2e_warmup + plan.events
        payload = PayloadSpec(f"m{tag}", plan.events, plan.contacts)
        gen = start_load(
            procs, "e2e-load", plan, port=port, channel_id=channel_id, payload=payload, warmup=0
        )
        last_commit = procs.wait_for(
            f"{plan.events} FlowDesk messages",
            lambda: not_failed(gen) and messages() >= target,
            timeout_s=plan.timeout_s,
            watch=children,
        )
        cpu_used = per_event_ms(_flowdesk_cpu(services, web, worker), cpu_before, plan.events)
        ingest = load_result(procs, gen, plan)
        trace = trace_minus(read_trace(plan, settle_s=1.5), warm_trace)
    finally:
        for child in reversed(children):
            procs.stop(child)
        infra.delete_prefix(services, prefix)
    elapsed = last_commit - ingest.first_send_wall
    return E2ERun(
        events=plan.events,
        elapsed_s=elapsed,
        eps=plan.events / elapsed,
        cpu_ms_per_event=cpu_used,
        ingest_rps=ingest.rps,
        worker_batches=_worker_batches(services, after_id=warm_ids),
        web_group_commits=_group_commits(services, after_id=warm_ids),
        dead_letters=infra.scalar(services, "SELECT count(*) FROM dead_letters"),
        trace=trace or None,
    )


def e2e_noop(procs: Processes, plan: Plan) -> E2ERun:
    """A no-op actor on the same broker type and worker settings: first enqueue to last ack."""
    prefix = infra.new_prefix("noop")
    env = flowdesk_env(plan, prefix)
    client = redis.Redis.from_url(plan.services.redis_url)
    broker = RedisBroker(url=plan.services.redis_url, namespace=prefix)  # type: ignore[no-untyped-call]
    worker: Child | None = None

    def finished(run: str) -> bool:
        return client.exists(noop.finished_key(prefix, run)) == 1

    try:
        worker = start_worker(procs, "noop-worker", "bench.noop_worker", plan, env)
        noop.enqueue_noops(broker, run="warmup", total=plan.e2e_warmup)
        procs.wait_for("no-op warm-up", lambda: finished("warmup"), timeout_s=60, watch=[worker])
        cpu_before = _noop_cpu(plan.services, worker)
        started = time.time()
        noop.enqueue_noops(broker, run="measured", total=plan.events)
        procs.wait_for(
            f"{plan.events} no-op completions",
            lambda: finished("measured"),
            timeout_s=plan.timeout_s,
            watch=[worker],
        )
        cpu_used = per_event_ms(_noop_cpu(plan.services, worker), cpu_before, plan.events)
        raw = client.get(noop.finished_key(prefix, "measured"))
        assert raw is not None
        elapsed = float(raw) - started
    finally:
        if worker is not None:
            procs.stop(worker)
        broker.close()
        infra.delete_prefix(plan.services, prefix)
    return E2ERun(
        events=plan.events, elapsed_s=elapsed, eps=plan.events / elapsed, cpu_ms_per_event=cpu_used
    )


# measurement helpers --------------------------------------------------------------------


def _flowdesk_cpu(services: Services, web: Child, worker: Child) -> dict[str, float]:
    return {
        "web": cpu.tree_cpu_s(web.popen.pid),
        "worker": cpu.tree_cpu_s(worker.popen.pid),
        "postgres": cpu.postgres_cpu_s(services),
    }


def _noop_cpu(services: Services, worker: Child) -> dict[str, float]:
    return {"worker": cpu.tree_cpu_s(worker.popen.pid), "redis": cpu.redis_cpu_s(services)}


def per_event_ms(after: dict[str, float], before: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per event, by process group."""
    return {k: 1000 * (after[k] - before.get(k, 0.0)) / n for k in after}


def read_trace(plan: Plan, *, settle_s: float) -> Trace:
    """The traced worker's totals so far (it dumps once a second), or {} when not tracing."""
    if not plan.trace_path:
        return {}
    time.sleep(settle_s)
    path = Path(plan.trace_path)
    trace: Trace = json.loads(path.read_text()) if path.exists() else {}
    return trace


def trace_minus(after: Trace, before: Trace) -> Trace:
    out: Trace = {}
    for key, v in after.items():
        b = before.get(key, {"count": 0, "seconds": 0.0})
        if v["count"] > b["count"]:
            out[key] = {"count": v["count"] - b["count"], "seconds": v["seconds"] - b["seconds"]}
    return out
