"""Claims: which campaigns are due, and recipients claimed at pace with what sending them needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from engine.events import ChannelConfig, ChannelType, Frozen

# Key space of the per-campaign tick lock (pg_try_advisory_xact_lock(class, id)).
_TICK_LOCK_CLASS = 7_265_434


class SendingCampaign(Frozen):
    """A campaign as the sending engine sees it, with its channel, zones and the tenant quota."""

    id: int
    tenant_id: int
    channel_id: int
    channel_type: ChannelType
    channel_external_id: str
    channel_config: ChannelConfig
    status: str
    variants: list[dict[str, Any]]
    send_window: dict[str, Any] | None
    time_zone: str
    tenant_time_zone: str
    rate_per_min: int | None
    delay_ms: int
    end_at: datetime | None
    next_send_at: datetime | None
    daily_quota: int | None


class Recipient(Frozen):
    """A claimed campaign_contacts row and what sending to its contact needs."""

    row_id: int
    contact_id: int
    variant: int | None
    name: str | None
    phone: str | None
    email: str | None
    opted_out: bool
    unreachable: bool
    merged: bool
    address: str | None
    suppressed: bool


def get_due_campaigns(conn: Connection, *, limit: int) -> list[tuple[int, int]]:
    """(tenant id, campaign id) of scheduled campaigns whose start time has come, oldest first.

    No lower bound on start_at: starts missed while no scheduler ran are caught up. System scope.
    """
    rows = conn.execute(
        text(
            "SELECT tenant_id, id FROM campaigns WHERE status = 'scheduled' AND start_at <= now() "
            "ORDER BY start_at, id LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def get_tick_campaign_ids(conn: Connection, *, limit: int) -> list[int]:
    """Campaigns a tick has work for (system scope): running and due; paused past their end
    time; cancelled today with rows still pending or claimed (sends to wind down)."""
    rows = conn.execute(
        text(
            """
            SELECT c.id FROM campaigns c
            WHERE (c.status = 'running' AND (c.next_send_at IS NULL OR c.next_send_at <= now()))
               OR (c.status = 'paused' AND c.end_at <= now())
               OR (c.status = 'cancelled' AND (
                      (c.finished_at > now() - interval '1 day' AND EXISTS (
                          SELECT 1 FROM campaign_contacts cc
                          WHERE cc.campaign_id = c.id AND cc.status = 'pending'))
                      OR c.id IN (
                          SELECT campaign_id FROM campaign_contacts WHERE status = 'claimed')))
            ORDER BY c.next_send_at NULLS FIRST, c.id LIMIT :limit
            """
        ),
        {"limit": limit},
    ).all()
    return [int(r[0]) for r in rows]


def try_lock_campaign(conn: Connection, campaign_id: int) -> bool:
    """One tick per campaign at a time (until the transaction ends); a concurrent tick skips.

    An advisory lock, not the row lock: status changes and counters never wait for a tick.
    """
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:k, CAST(:id % 2147483647 AS integer))"),
            {"k": _TICK_LOCK_CLASS, "id": campaign_id},
        ).scalar_one()
    )


def get_sending_campaign(conn: Connection, campaign_id: int) -> SendingCampaign | None:
    """The campaign with its channel, zones and the tenant's daily quota (system scope)."""
    row = (
        conn.execute(
            text(
                """
                SELECT c.id, c.tenant_id, c.channel_id, ch.type AS channel_type,
                       ch.external_id AS channel_external_id, ch.config AS channel_config,
                       c.status, c.variants, c.send_window,
                       coalesce(c.time_zone, t.time_zone) AS time_zone,
                       t.time_zone AS tenant_time_zone, c.rate_per_min, c.delay_ms, c.end_at,
                       c.next_send_at, t.limits->'daily_campaign_sends' AS daily_quota
                FROM campaigns c
                JOIN tenants t ON t.id = c.tenant_id
                JOIN channels ch ON ch.id = c.channel_id
                WHERE c.id = :id
                """
            ),
            {"id": campaign_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    fields = dict(row)
    quota = fields["daily_quota"]
    # tenants.limits is free-form JSON: anything but a non-negative integer means unlimited.
    valid = isinstance(quota, int) and not isinstance(quota, bool) and quota >= 0
    fields["daily_quota"] = quota if valid else None
    fields["channel_config"] = ChannelConfig.model_validate(fields["channel_config"] or {})
    fields["variants"] = list(fields["variants"] or [])
    return SendingCampaign.model_validate(fields)


def set_next_send_at(
    conn: Connection, *, tenant_id: int, campaign_id: int, at: datetime | None
) -> None:
    """When the next tick is due. Only while running: a status change wins over a tick."""
    conn.execute(
        text(
            "UPDATE campaigns SET next_send_at = :at "
            "WHERE tenant_id = :t AND id = :id AND status = 'running'"
        ),
        {"t": tenant_id, "id": campaign_id, "at": at},
    )


def lock_recipients(
    conn: Connection, *, tenant_id: int, campaign_id: int, channel_type: ChannelType, limit: int
) -> list[Recipient]:
    """Lock up to `limit` pending rows, oldest first, with FOR UPDATE SKIP LOCKED (concurrent
    claimers get disjoint rows), each with the contact's flags as they are now, its address
    on the channel and whether the suppression list names it.

    Only locked here; settle_claims writes each row once. A row updated twice in a transaction
    makes PostgreSQL re-check its foreign keys, which would share-lock the campaign row and
    hold up an operator's pause or cancel until the tick commits.
    """
    if limit <= 0:
        return []
    rows = conn.execute(
        text(
            """
            WITH picked AS (
                SELECT id, contact_id, variant FROM campaign_contacts
                WHERE tenant_id = :t AND campaign_id = :c AND status = 'pending'
                ORDER BY id LIMIT :limit
                FOR UPDATE SKIP LOCKED)
            SELECT p.id, p.contact_id, p.variant, ct.name, ct.phone, ct.email, ct.opted_out,
                   ct.unreachable, ct.merged_into_id IS NOT NULL, ci.external_id,
                   EXISTS (SELECT 1 FROM suppression_list s
                           WHERE s.tenant_id = :t AND s.address IN (
                               ct.phone, lower(ct.email), ci.identity_key, ci.external_id))
            FROM picked p
            JOIN contacts ct ON ct.id = p.contact_id AND ct.tenant_id = :t
            LEFT JOIN LATERAL (
                SELECT identity_key, external_id FROM contact_identities
                WHERE tenant_id = :t AND contact_id = p.contact_id AND channel_type = :ct
                ORDER BY updated_at DESC LIMIT 1) ci ON true
            ORDER BY p.id
            """
        ),
        {"t": tenant_id, "c": campaign_id, "limit": limit, "ct": channel_type.value},
    ).all()
    keys = list(Recipient.model_fields)
    return [Recipient.model_validate(dict(zip(keys, r, strict=True))) for r in rows]


def link_identity(
    conn: Connection,
    *,
    tenant_id: int,
    contact_id: int,
    channel_type: ChannelType,
    identity_key: str,
    external_id: str,
) -> bool:
    """Give a contact known only by phone its address on a phone channel. False when that
    number is another contact's identity there (the caller skips the recipient)."""
    owner = conn.execute(
        text(
            """
            INSERT INTO contact_identities (tenant_id, contact_id, channel_type, identity_key,
                external_id)
            VALUES (:t, :c, :ct, :key, :ext)
            ON CONFLICT (tenant_id, channel_type, identity_key)
            DO UPDATE SET updated_at = contact_identities.updated_at
            RETURNING contact_id
            """
        ),
        {
            "t": tenant_id,
            "c": contact_id,
            "ct": channel_type.value,
            "key": identity_key,
            "ext": external_id,
        },
    ).scalar_one()
    return int(owner) == contact_id


class CampaignTicket(Frozen):
    """The ticket a campaign message is written on, and when its contact last wrote there."""

    id: int
    protocol: str
    created: bool
    last_inbound_at: datetime | None


def get_campaign_ticket(
    conn: Connection, *, tenant_id: int, channel_id: int, contact_id: int
) -> CampaignTicket:
    """The ticket a campaign message to this contact is written on.

    The live ticket if there is one (the agent sees the message in the conversation), else the
    newest closed one, else a new closed ticket: a campaign must not flood the agents' queue
    with a pending ticket per recipient. A reply opens a live ticket the usual way. Its
    last_inbound_at is what the send's 24-hour window check reads.
    """
    row = conn.execute(
        text(
            """
            SELECT id, protocol, last_inbound_at FROM tickets
            WHERE tenant_id = :t AND channel_id = :ch AND contact_id = :c
            ORDER BY status IN ('pending', 'open') DESC, id DESC LIMIT 1
            """
        ),
        {"t": tenant_id, "ch": channel_id, "c": contact_id},
    ).first()
    if row is not None:
        return CampaignTicket(
            id=int(row[0]), protocol=str(row[1]), created=False, last_inbound_at=row[2]
        )
    created = conn.execute(
        text(
            """
            INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol, closed_at)
            VALUES (:t, :ch, :c, 'closed',
                    flowdesk_next_protocol(),
                    now())
            RETURNING id, protocol
            """
        ),
        {"t": tenant_id, "ch": channel_id, "c": contact_id},
    ).one()
    return CampaignTicket(
        id=int(created[0]), protocol=str(created[1]), created=True, last_inbound_at=None
    )


def settle_claims(
    conn: Connection,
    *,
    tenant_id: int,
    sends: list[tuple[int, int]],
    skips: list[tuple[int, str]],
) -> None:
    """Write locked rows once: `claimed` with their message id ((row id, message id) pairs),
    in the transaction that recorded the messages, so a claimed row never exists without its
    message; or `skipped` with a reason ((row id, reason) pairs)."""
    if not sends and not skips:
        return
    conn.execute(
        text(
            """
            UPDATE campaign_contacts cc SET
                status = CASE WHEN v.m IS NULL THEN 'skipped' ELSE 'claimed' END,
                message_id = v.m, reason = v.r, claimed_at = now(),
                attempts = cc.attempts + 1, updated_at = now()
            FROM unnest(CAST(:ids AS bigint[]), CAST(:mids AS bigint[]), CAST(:reasons AS text[]))
                AS v(id, m, r)
            WHERE cc.id = v.id AND cc.tenant_id = :t AND cc.status = 'pending'
            """
        ),
        {
            "t": tenant_id,
            "ids": [row for row, _ in sends] + [row for row, _ in skips],
            "mids": [m for _, m in sends] + [None] * len(skips),
            "reasons": [None] * len(sends) + [r for _, r in skips],
        },
    )
