"""Campaign test data: an audience that wrote in recently, a campaign over it, row statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from engine.campaigns import Audience, CampaignStatus, SendWindow, Variant
from engine.db import system_tx, tenant_tx
from engine.ratelimit import limits_for
from engine.store.campaigns import CampaignSettings, insert_campaign, transition
from engine.store.outbound import mark_sent
from pipelines.campaigns.progress import follow_message_statuses
from pipelines.campaigns.start import start_due_campaigns
from pipelines.campaigns.tick import TickOutcome, tick_campaign
from tests.support.harness import Seeded

BODY = "Olá {{first_name|cliente}}! Seu cupom vale até domingo. Protocolo {{protocol}}."


def seed_audience(
    db: Engine, *, tenant_id: int, channel_id: int, count: int, first: int = 0
) -> list[int]:
    """`count` WhatsApp contacts, each with an open ticket they wrote on a minute ago (so the
    24-hour window is open and a free-form campaign text may go out). Their ids."""
    ids: list[int] = []
    with system_tx(db) as conn:
        for i in range(first, first + count):
            phone = f"+55119{90000000 + i:08d}"
            contact_id = conn.execute(
                text(
                    "INSERT INTO contacts (tenant_id, name, phone) VALUES (:t, :n, :p) RETURNING id"
                ),
                {"t": tenant_id, "n": f"Cliente {i} Silva", "p": phone},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO contact_identities (tenant_id, contact_id, channel_type,"
                    " identity_key, external_id) VALUES (:t, :c, 'whatsapp', :p, :w)"
                ),
                {"t": tenant_id, "c": contact_id, "p": phone, "w": phone.lstrip("+")},
            )
            conn.execute(
                text(
                    "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol,"
                    " last_inbound_at, last_message_at) VALUES (:t, :ch, :c, 'open', :proto,"
                    " now() - interval '1 minute', now() - interval '1 minute')"
                ),
                {"t": tenant_id, "ch": channel_id, "c": contact_id, "proto": f"P{contact_id:08d}"},
            )
            ids.append(int(contact_id))
    return ids


def create_campaign(
    db: Engine,
    *,
    tenant_id: int,
    channel_id: int,
    contact_ids: list[int],
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    send_window: SendWindow | None = None,
    time_zone: str = "UTC",
    rate_per_min: int | None = None,
    delay_ms: int = 0,
    body: str = BODY,
    variants: list[Variant] | None = None,
) -> int:
    """A campaign over `contact_ids`; `scheduled` when given a start time, else a draft.
    `variants` replaces the single variant of `body`."""
    settings = CampaignSettings(
        channel_id=channel_id,
        name="Cupom de domingo",
        variants=variants or [Variant(body=body)],
        audience=Audience(contact_ids=contact_ids),
        start_at=start_at,
        end_at=end_at,
        send_window=send_window,
        time_zone=time_zone,
        delay_ms=delay_ms,
        rate_per_min=rate_per_min,
    )
    with tenant_tx(db, tenant_id) as conn:
        campaign_id = insert_campaign(conn, tenant_id=tenant_id, settings=settings, created_by=None)
        if start_at is not None:
            transition(
                conn, campaign_id, CampaignStatus.SCHEDULED, tenant_id=tenant_id, user_id=None
            )
    return campaign_id


def set_status(db: Engine, tenant_id: int, campaign_id: int, to: CampaignStatus) -> None:
    """What an operator's pause, resume or cancel does (the API calls the same transition)."""
    with tenant_tx(db, tenant_id) as conn:
        transition(conn, campaign_id, to, tenant_id=tenant_id, user_id=None)


def campaign(db: Engine, campaign_id: int) -> dict[str, Any]:
    with system_tx(db) as conn:
        row = conn.execute(
            text("SELECT * FROM campaigns WHERE id = :id"), {"id": campaign_id}
        ).mappings()
        return dict(row.one())


def rows_by_status(db: Engine, campaign_id: int) -> dict[str, int]:
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT status, count(*) FROM campaign_contacts WHERE campaign_id = :id "
                "GROUP BY status"
            ),
            {"id": campaign_id},
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def recipient_rows(db: Engine, campaign_id: int) -> list[dict[str, Any]]:
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT cc.*, m.status AS message_status, m.error_code AS message_error "
                "FROM campaign_contacts cc LEFT JOIN messages m ON m.id = cc.message_id "
                "WHERE cc.campaign_id = :id ORDER BY cc.id"
            ),
            {"id": campaign_id},
        ).mappings()
        return [dict(r) for r in rows]


def campaign_messages(db: Engine, tenant_id: int) -> list[dict[str, Any]]:
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT m.*, ci.external_id AS wa_id FROM messages m "
                "JOIN contact_identities ci ON ci.contact_id = m.contact_id "
                "WHERE m.tenant_id = :t AND m.send_type = 'campaign' ORDER BY m.id"
            ),
            {"t": tenant_id},
        ).mappings()
        return [dict(r) for r in rows]


def backdate(db: Engine, campaign_id: int, *, seconds: int) -> None:
    """Pretend the campaign's open claims and their messages are `seconds` old (sweep
    deadlines). Rows already settled are left alone: status webhooks are moving them."""
    with system_tx(db) as conn:
        # messages before rows: the order every status path locks them in
        conn.execute(
            text(
                "UPDATE messages SET created_at = created_at - make_interval(secs => :s),"
                " status_at = status_at - make_interval(secs => :s) "
                "WHERE id IN (SELECT message_id FROM campaign_contacts "
                "WHERE campaign_id = :id AND status = 'claimed')"
            ),
            {"s": seconds, "id": campaign_id},
        )
        conn.execute(
            text(
                "UPDATE campaign_contacts SET claimed_at = claimed_at - make_interval(secs => :s) "
                "WHERE campaign_id = :id AND status = 'claimed'"
            ),
            {"s": seconds, "id": campaign_id},
        )


# --- driving the stages by hand (pipeline tests) ----------------------------------------

PAST = datetime.now(UTC) - timedelta(hours=3)


def started(db: Engine, seeded: Seeded, contacts: int, **settings: Any) -> tuple[int, list[int]]:
    """A campaign over `contacts` new contacts, started by the scheduler's job."""
    ids = seed_audience(
        db, tenant_id=seeded.tenant_id, channel_id=seeded.channel_id, count=contacts
    )
    campaign_id = create_campaign(
        db,
        tenant_id=seeded.tenant_id,
        channel_id=seeded.channel_id,
        contact_ids=ids,
        start_at=PAST,
        **settings,
    )
    assert start_due_campaigns(db).started == [campaign_id]
    return campaign_id, ids


def tick(db: Engine, campaign_id: int, now: datetime | None = None) -> TickOutcome:
    return tick_campaign(campaign_id, db=db, limits=limits_for, now=now)


def db_now(db: Engine) -> datetime:
    with system_tx(db) as conn:
        value: datetime = conn.execute(text("SELECT now()")).scalar_one()
    return value


def sql(db: Engine, statement: str, **params: object) -> None:
    with system_tx(db) as conn:
        conn.execute(text(statement), params)


def sent_all(db: Engine, campaign_id: int) -> None:
    """What the send worker's ack does for every claimed message."""
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT tenant_id, message_id FROM campaign_contacts "
                "WHERE campaign_id = :c AND status = 'claimed'"
            ),
            {"c": campaign_id},
        ).all()
        for tenant_id, message_id in rows:
            mark_sent(conn, message_id=message_id, provider_message_id=f"wamid.{message_id}")
            follow_message_statuses(conn, tenant_id=tenant_id, message_ids=[message_id])
