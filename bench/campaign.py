"""A campaign to the provider sandbox: how fast its audience freezes, how close its sends come to
the channel's configured rate limit, and that every recipient got exactly one message."""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import text

from bench import cpu, infra
from bench.infra import BenchError, Services
from bench.models import CampaignRun, Plan
from bench.outbound import (
    Limit,
    db_engine,
    sandbox_requests,
    seed_tickets,
    start_sandbox,
    steady_rate,
)
from bench.procs import Child, Processes, python_argv
from bench.scenarios import per_event_ms
from bench.targets import flowdesk_env, start_worker
from engine.campaigns import Audience, Variant
from engine.db import system_tx, tenant_tx
from engine.events import ChannelConfig
from engine.store.campaigns import CampaignSettings, insert_campaign, start_now

CAMPAIGN_LIMIT = Limit(200.0, 200)  # the channel's configured rate: what the sends are held to
BODY = "Olá {{first_name|cliente}}! Seu cupom de 20% vale até domingo. Protocolo {{protocol}}."


def campaign_flowdesk(
    procs: Processes, plan: Plan, *, recipients: int, limit: Limit = CAMPAIGN_LIMIT
) -> CampaignRun:
    """Seed `recipients` contacts under one tag, start a campaign to the tag in-process (the
    freeze, timed), then let a real scheduler and worker send it to the sandbox until the
    campaign is `finished`; check one provider request per recipient."""
    services = plan.services
    infra.fresh_database(services)
    prefix = infra.new_prefix("campaign")
    children: list[Child] = []
    try:
        sandbox, sandbox_url = start_sandbox(procs)
        children.append(sandbox)
        config = limit.channel_config(sandbox_url)
        tenant_id, campaign_id = _seed(services, config, recipients)
        freeze_s = _start(services, tenant_id, campaign_id)
        env = flowdesk_env(plan, prefix)
        children.append(start_worker(procs, "campaign-worker", "actors.worker_entry", plan, env))
        before = _cpu(services, children)
        children.append(
            procs.start("campaign-scheduler", python_argv("-m", "api.cli", "scheduler"), env)
        )
        procs.wait_for(
            f"campaign of {recipients:,} to finish",
            lambda: _status(services, campaign_id) in ("finished", "failed"),
            timeout_s=recipients / limit.rate_per_s * 6 + 300,
            watch=children,
        )
        cpu_ms = per_event_ms(_cpu(services, children), before, recipients)
        recorded = sandbox_requests(sandbox_url)
    finally:
        for child in reversed(children):
            procs.stop(child)
        infra.delete_prefix(services, prefix)
    sent_at = _sent_times(services, recipients)
    elapsed = sent_at[-1] - sent_at[0]
    sps = (len(sent_at) - 1) / elapsed if elapsed > 0 else 0.0
    accepted = [r for r in recorded if r.get("status") == 200 and r.get("message_id")]
    return CampaignRun(
        recipients=recipients,
        freeze_s=freeze_s,
        freeze_rps=recipients / freeze_s,
        send_elapsed_s=elapsed,
        sps=sps,
        steady_sps=steady_rate(sent_at, limit.burst),
        rate_per_s=limit.rate_per_s,
        burst=limit.burst,
        limit_ratio=sps / limit.rate_per_s,
        cpu_ms_per_send=cpu_ms,
        provider_requests=len(recorded),
        exactly_once=len(accepted) == len(recorded) == recipients
        and len({str(r["message_id"]) for r in accepted}) == recipients
        and _one_per_contact(services),
        dead_letters=infra.scalar(services, "SELECT count(*) FROM dead_letters"),
    )


def _seed(services: Services, config: ChannelConfig, recipients: int) -> tuple[int, int]:
    """Contacts who wrote an hour ago (inside the 24-hour window), all tagged, and a draft
    campaign to that tag, paced by the channel alone. Set-based: seeding is not measured."""
    channel_id = infra.seed_channel(services, config)
    engine = db_engine(services)
    try:
        with system_tx(engine) as conn:
            tenant_id = int(
                conn.execute(
                    text("SELECT tenant_id FROM channels WHERE id = :id"), {"id": channel_id}
                ).scalar_one()
            )
            seed_tickets(conn, tenant_id=tenant_id, channel_id=channel_id, n=recipients)
            tag_id = int(
                conn.execute(
                    text("INSERT INTO tags (tenant_id, name) VALUES (:t, 'bench') RETURNING id"),
                    {"t": tenant_id},
                ).scalar_one()
            )
            conn.execute(
                text(
                    "INSERT INTO contact_tags (tenant_id, contact_id, tag_id) "
                    "SELECT tenant_id, id, :tag FROM contacts WHERE tenant_id = :t"
                ),
                {"t": tenant_id, "tag": tag_id},
            )
        # Planner statistics, as autovacuum keeps them on a live database: without them the
        # freeze's plan guesses these tables empty. As the tables' owner (FlowDesk's role
        # may not analyze them).
        with psycopg.connect(services.dsn(), autocommit=True) as admin:
            admin.execute("ANALYZE")
        settings = CampaignSettings(
            channel_id=channel_id,
            name="Bench campaign",
            variants=[Variant(body=BODY)],
            audience=Audience(tag_ids=[tag_id]),
            time_zone="UTC",
        )
        with tenant_tx(engine, tenant_id) as conn:
            campaign_id = insert_campaign(
                conn, tenant_id=tenant_id, settings=settings, created_by=None
            )
        return tenant_id, campaign_id
    finally:
        engine.dispose()


def _start(services: Services, tenant_id: int, campaign_id: int) -> float:
    """Start the campaign as `POST …/start` does; the seconds its transaction (the audience
    freeze, one INSERT … SELECT) took."""
    engine = db_engine(services)
    try:
        started = time.perf_counter()
        with tenant_tx(engine, tenant_id) as conn:
            now = conn.execute(text("SELECT now()")).scalar_one()
            start_now(conn, campaign_id, tenant_id=tenant_id, user_id=None, reason=None, now=now)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def _status(services: Services, campaign_id: int) -> str:
    [(status,)] = infra.rows(services, f"SELECT status FROM campaigns WHERE id = {campaign_id}")
    return str(status)


def _cpu(services: Services, children: list[Child]) -> dict[str, float]:
    out = {
        child.name.removeprefix("campaign-"): cpu.tree_cpu_s(child.popen.pid) for child in children
    }
    out["postgres"] = cpu.postgres_cpu_s(services)
    out["redis"] = cpu.redis_cpu_s(services)
    return out


def _sent_times(services: Services, recipients: int) -> list[float]:
    """Each campaign message's `sent` time, in order; BenchError unless all were sent."""
    rows = infra.rows(
        services,
        "SELECT status, extract(epoch FROM status_at)::float8 FROM messages "
        "WHERE send_type = 'campaign'",
    )
    unsent = [str(r[0]) for r in rows if r[0] != "sent"]
    if unsent or len(rows) != recipients:
        raise BenchError(
            f"{len(rows)} campaign messages for {recipients} recipients, {len(unsent)} not sent"
        )
    return sorted(float(str(r[1])) for r in rows)


def _one_per_contact(services: Services) -> bool:
    most = infra.scalar(
        services,
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM messages "
        "WHERE send_type = 'campaign' GROUP BY contact_id) x",
    )
    return most == 1
