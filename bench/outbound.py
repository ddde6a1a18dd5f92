"""Outbound sends to the provider sandbox: pending messages recorded up front, timed to `sent`."""

from __future__ import annotations

import http.client
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Connection, Engine, text

from actors.outbound import send_messages
from bench import cpu, infra
from bench.infra import BenchError, Services
from bench.models import OutboundRun, Plan, Trace
from bench.procs import Child, Processes, free_port, python_argv
from bench.scenarios import per_event_ms, read_trace, trace_minus
from bench.targets import flowdesk_env, start_worker
from engine.db import create_db_engine, system_tx, tenant_tx
from engine.events import ChannelConfig
from pipelines.outbound import OUTBOUND_QUEUE, SEND_BATCH, SendRequest, record_send

GRAPH_VERSION = "v21.0"
BODY = "Thanks for waiting: your order left the warehouse today."


@dataclass(frozen=True)
class Limit:
    """A channel's configured send rate (ChannelConfig.rate_per_s / burst)."""

    rate_per_s: float
    burst: int

    def channel_config(self, sandbox_url: str) -> ChannelConfig:
        """A WhatsApp channel sending to the sandbox at this limit."""
        return ChannelConfig(
            api_base_url=f"{sandbox_url}/{GRAPH_VERSION}",
            rate_per_s=self.rate_per_s,
            burst=self.burst,
        )


UNPACED = Limit(10_000.0, 10_000)  # the most ChannelConfig allows: the bucket is not measured
WHATSAPP_DEFAULT = Limit(80.0, 80)  # engine.ratelimit.DEFAULT_LIMITS for WhatsApp


def outbound_flowdesk(procs: Processes, plan: Plan, *, sends: int, limit: Limit) -> OutboundRun:
    """`sends` pending messages through the real worker to the sandbox, first enqueue to last
    `sent`; then check the sandbox saw exactly one request per message."""
    services = plan.services
    infra.fresh_database(services)
    prefix = infra.new_prefix("outbound")
    children: list[Child] = []
    try:
        sandbox, sandbox_url = start_sandbox(procs)
        children.append(sandbox)
        config = limit.channel_config(sandbox_url)
        message_ids = record_pending(services, config, plan.e2e_warmup + sends)
        timed = _send_all(procs, plan, prefix, message_ids, limit, sandbox, children)
        recorded = sandbox_requests(sandbox_url)
    finally:
        for child in reversed(children):
            procs.stop(child)
        infra.delete_prefix(services, prefix)
    sent_at = _sent_times(services, timed.message_ids)
    latencies = sorted(
        1000 * (sent_at[m] - t) for m, t in zip(timed.message_ids, timed.enqueued, strict=True)
    )
    elapsed = max(sent_at.values()) - timed.enqueued[0]
    return OutboundRun(
        sends=sends,
        elapsed_s=elapsed,
        sps=sends / elapsed,
        rate_per_s=limit.rate_per_s,
        burst=limit.burst,
        cpu_ms_per_send=timed.cpu_ms,
        latency_p50_ms=_quantile(latencies, 0.50),
        latency_p99_ms=_quantile(latencies, 0.99),
        steady_sps=steady_rate(sorted(sent_at.values()), limit.burst),
        provider_requests=len(recorded),
        expected_requests=len(message_ids),
        exactly_once=_exactly_once(services, recorded, len(message_ids)),
        attempts=infra.scalar(
            services,
            "SELECT sum(send_attempts) FROM messages "
            f"WHERE id BETWEEN {min(timed.message_ids)} AND {max(timed.message_ids)}",
        ),
        dead_letters=infra.scalar(services, "SELECT count(*) FROM dead_letters"),
        trace=timed.trace or None,
    )


@dataclass(frozen=True)
class _Timed:
    message_ids: list[int]  # the measured ones, in enqueue order
    enqueued: list[float]  # wall time of each one's enqueue
    cpu_ms: dict[str, float]  # per send, by process group
    trace: Trace


def _send_all(
    procs: Processes,
    plan: Plan,
    prefix: str,
    message_ids: list[int],
    limit: Limit,
    sandbox: Child,
    children: list[Child],
) -> _Timed:
    """Start the worker (added to `children`), send the warm-up, then time the rest; stops the
    worker at the end, so nothing can reach the sandbox afterwards."""
    services = plan.services
    warm_ids, measured_ids = message_ids[: plan.e2e_warmup], message_ids[plan.e2e_warmup :]
    env = flowdesk_env(plan, prefix)
    module = "actors.worker_entry"
    if plan.trace_path:
        module, env = "bench.traced_worker", {**env, "BENCH_TRACE_PATH": plan.trace_path}
        Path(plan.trace_path).unlink(missing_ok=True)
    broker = RedisBroker(url=services.redis_url, namespace=prefix)  # type: ignore[no-untyped-call]
    try:
        worker = start_worker(procs, "outbound-worker", module, plan, env)
        children.append(worker)
        enqueue_sends(broker, warm_ids)
        procs.wait_for(
            "outbound warm-up sends",
            lambda: _pending(services) == len(measured_ids),
            timeout_s=60,
            watch=children,
        )
        # Let the bucket refill what the warm-up took, so the measured run starts full.
        time.sleep(min(len(warm_ids), limit.burst) / limit.rate_per_s)
        warm_trace = read_trace(plan, settle_s=1.2)
        cpu_before = _cpu(services, worker, sandbox)
        enqueued = enqueue_sends(broker, measured_ids)
        procs.wait_for(
            f"{len(measured_ids)} outbound sends",
            lambda: _pending(services) == 0,
            timeout_s=plan.timeout_s,
            watch=children,
        )
        cpu_ms = per_event_ms(_cpu(services, worker, sandbox), cpu_before, len(measured_ids))
        trace = trace_minus(read_trace(plan, settle_s=1.5), warm_trace)
        procs.stop(worker)
    finally:
        broker.close()
    return _Timed(measured_ids, enqueued, cpu_ms, trace)


# set-up ---------------------------------------------------------------------------------


def start_sandbox(procs: Processes) -> tuple[Child, str]:
    """The provider sandbox in its own process on a free port; returns it and its base URL."""
    port = free_port()
    argv = python_argv("-m", "bench.sandbox_server", str(port))
    child = procs.start("sandbox", argv, dict(os.environ))
    procs.wait_for("sandbox to listen", lambda: _sandbox_up(port), timeout_s=30, watch=[child])
    return child, f"http://127.0.0.1:{port}"


def _sandbox_up(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/_sandbox/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def record_pending(services: Services, config: ChannelConfig, count: int) -> list[int]:
    """A channel, `count` contacts each with an open ticket and a customer message an hour ago
    (inside the 24-hour window), and one `pending` reply per ticket recorded by record_send,
    all before anything is timed. Returns the message ids in ticket order."""
    channel_id = infra.seed_channel(services, config)
    engine = db_engine(services)
    try:
        with system_tx(engine) as conn:
            tenant_id = int(
                conn.execute(
                    text("SELECT tenant_id FROM channels WHERE id = :id"), {"id": channel_id}
                ).scalar_one()
            )
            ticket_ids = seed_tickets(conn, tenant_id=tenant_id, channel_id=channel_id, n=count)
        request = SendRequest(body=BODY)
        with tenant_tx(engine, tenant_id) as conn:
            return [
                record_send(
                    conn, tenant_id=tenant_id, ticket_id=t, request=request, user_id=None
                ).message_id
                for t in ticket_ids
            ]
    finally:
        engine.dispose()


def db_engine(services: Services) -> Engine:
    return create_db_engine(services.dsn().replace("postgresql://", "postgresql+psycopg://"))


def seed_tickets(conn: Connection, *, tenant_id: int, channel_id: int, n: int) -> list[int]:
    """Set-based, because seeding is not what is measured: contact, WhatsApp identity, ticket."""
    params = {"t": tenant_id, "ch": channel_id, "n": n}
    conn.execute(
        text(
            "INSERT INTO contacts (tenant_id, name, phone) "
            "SELECT :t, 'Bench customer ' || g, '+55119' || lpad(g::text, 8, '0') "
            "FROM generate_series(1, :n) AS g"
        ),
        params,
    )
    conn.execute(
        text(
            "INSERT INTO contact_identities (tenant_id, contact_id, channel_type, identity_key, "
            "external_id) SELECT tenant_id, id, 'whatsapp', phone, substr(phone, 2) "
            "FROM contacts WHERE tenant_id = :t"
        ),
        params,
    )
    rows = conn.execute(
        text(
            "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, "
            "unread_count, last_message_at, last_inbound_at) "
            "SELECT tenant_id, :ch, id, 'open', 'BENCH' || lpad(id::text, 10, '0'), 1, "
            "now() - interval '1 hour', now() - interval '1 hour' "
            "FROM contacts WHERE tenant_id = :t ORDER BY id RETURNING id"
        ),
        params,
    ).all()
    return sorted(int(r[0]) for r in rows)


def enqueue_sends(
    broker: dramatiq.Broker, message_ids: list[int], *, batch: int = SEND_BATCH
) -> list[float]:
    """send_messages with `batch` ids per broker message, as bulk senders (sweeper, campaigns)
    enqueue; returns each id's enqueue wall time (its batch's)."""
    times: list[float] = []
    for start in range(0, len(message_ids), batch):
        chunk = message_ids[start : start + batch]
        times += [time.time()] * len(chunk)
        broker.enqueue(
            dramatiq.Message(
                queue_name=OUTBOUND_QUEUE,
                actor_name=send_messages.actor_name,
                args=(chunk,),
                kwargs={},
                options={},
            )
        )
    return times


# measurement ----------------------------------------------------------------------------


def _pending(services: Services) -> int:
    return infra.scalar(
        services, "SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'pending'"
    )


def _cpu(services: Services, worker: Child, sandbox: Child) -> dict[str, float]:
    return {
        "worker": cpu.tree_cpu_s(worker.popen.pid),
        "postgres": cpu.postgres_cpu_s(services),
        "sandbox": cpu.tree_cpu_s(sandbox.popen.pid),
        "redis": cpu.redis_cpu_s(services),
    }


def _sent_times(services: Services, message_ids: list[int]) -> dict[int, float]:
    """When each message became `sent` (its status_at, PostgreSQL's clock: this host's).

    Raises BenchError when any ended otherwise (failed, or still pending).
    """
    rows = infra.rows(
        services,
        "SELECT id, status, coalesce(error_code, ''), extract(epoch FROM status_at)::float8 "
        f"FROM messages WHERE id BETWEEN {min(message_ids)} AND {max(message_ids)}",
    )
    unsent = [f"{r[0]} {r[1]} {r[2]}" for r in rows if r[1] != "sent"]
    if unsent or len(rows) != len(message_ids):
        raise BenchError(f"{len(unsent)} messages not sent, e.g. {unsent[:5]}")
    return {int(str(r[0])): float(str(r[3])) for r in rows}


def sandbox_requests(base_url: str) -> list[dict[str, object]]:
    """Every WhatsApp request the sandbox recorded."""
    answer = httpx.get(f"{base_url}/_sandbox/requests", params={"provider": "whatsapp"}, timeout=30)
    answer.raise_for_status()
    recorded: list[dict[str, object]] = json.loads(answer.content)
    return recorded


def _exactly_once(services: Services, recorded: list[dict[str, object]], expected: int) -> bool:
    """One successful provider request per message, and the provider id stored is its answer."""
    stored = {
        str(r[0])
        for r in infra.rows(
            services,
            "SELECT provider_message_id FROM messages "
            "WHERE direction = 'out' AND provider_message_id IS NOT NULL",
        )
    }
    answered = {str(r.get("message_id")) for r in recorded if r.get("status") == 200}
    return len(recorded) == expected == len(stored) and answered == stored


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def steady_rate(sent_at: list[float], burst: int) -> float | None:
    """Sends per second over the second half, long after the initial burst is spent: what the
    bucket's refill rate allows. None when the burst covers that half too."""
    half = len(sent_at) // 2
    if burst >= half or len(sent_at) < 4:
        return None
    span = sent_at[-1] - sent_at[half]
    return (len(sent_at) - 1 - half) / span if span > 0 else None
