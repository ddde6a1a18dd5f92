"""Tenants' outbound webhooks: subscriptions, and one delivery row per (subscription, event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, RowMapping, text

from engine.events import Frozen

DeliveryStatus = Literal["pending", "retrying", "delivered", "dead"]
DELIVER_ACTOR = "deliver_webhook"


class Subscription(Frozen):
    """A subscription as the API shows it: never with its secret."""

    id: int
    tenant_id: int
    url: str
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime


class PlannedDelivery(Frozen):
    id: int
    tenant_id: int


class DeliveryJob(Frozen):
    """What one attempt needs: the delivery, its subscription's URL and signing secret."""

    id: int
    tenant_id: int
    subscription_id: int
    outbox_id: int | None
    event: str
    payload_json: str
    created_at: datetime
    attempts: int
    url: str
    secret: str


class Delivery(Frozen):
    id: int
    subscription_id: int
    outbox_id: int | None
    event: str
    status: DeliveryStatus
    status_code: int | None
    latency_ms: int | None
    attempts: int
    error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def _subscription(row: RowMapping) -> Subscription:
    return Subscription.model_validate({**row, "events": tuple(row["events"])})


def insert_subscription(
    conn: Connection,
    *,
    tenant_id: int,
    url: str,
    events: Sequence[str],
    secret: str,
    enabled: bool = True,
) -> Subscription:
    row = (
        conn.execute(
            text(
                "INSERT INTO webhook_subscriptions (tenant_id, url, events, secret, enabled) "
                "VALUES (:t, :url, :events, :secret, :enabled) "
                "RETURNING id, tenant_id, url, events, enabled, created_at"
            ),
            {
                "t": tenant_id,
                "url": url,
                "events": list(events),
                "secret": secret,
                "enabled": enabled,
            },
        )
        .mappings()
        .one()
    )
    return _subscription(row)


def get_subscription(
    conn: Connection, *, tenant_id: int, subscription_id: int
) -> Subscription | None:
    row = (
        conn.execute(
            text(
                "SELECT id, tenant_id, url, events, enabled, created_at "
                "FROM webhook_subscriptions WHERE tenant_id = :t AND id = :id"
            ),
            {"t": tenant_id, "id": subscription_id},
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else _subscription(row)


def list_subscriptions(
    conn: Connection,
    *,
    tenant_id: int,
    enabled: bool | None,
    event: str | None,
    q: str | None,
    before_id: int | None,
    limit: int,
) -> list[Subscription]:
    """Newest first; `q` matches anywhere in the URL, case-insensitively (no LIKE patterns)."""
    rows = conn.execute(
        text(
            "SELECT id, tenant_id, url, events, enabled, created_at "
            "FROM webhook_subscriptions WHERE tenant_id = :t "
            "AND (CAST(:enabled AS boolean) IS NULL OR enabled = :enabled) "
            "AND (CAST(:event AS text) IS NULL OR :event = ANY(events)) "
            "AND (CAST(:q AS text) IS NULL OR position(lower(:q) IN lower(url)) > 0) "
            "AND (CAST(:before AS bigint) IS NULL OR id < :before) "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {
            "t": tenant_id,
            "enabled": enabled,
            "event": event,
            "q": q,
            "before": before_id,
            "limit": limit,
        },
    ).mappings()
    return [_subscription(r) for r in rows]


def update_subscription(
    conn: Connection,
    *,
    tenant_id: int,
    subscription_id: int,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
) -> Subscription | None:
    """Change the given fields (None leaves a field as it is); None when there is no such row."""
    row = (
        conn.execute(
            text(
                "UPDATE webhook_subscriptions SET url = coalesce(:url, url), "
                "events = coalesce(:events, events), enabled = coalesce(:enabled, enabled), "
                "secret = coalesce(:secret, secret) "
                "WHERE tenant_id = :t AND id = :id "
                "RETURNING id, tenant_id, url, events, enabled, created_at"
            ),
            {
                "t": tenant_id,
                "id": subscription_id,
                "url": url,
                "events": None if events is None else list(events),
                "enabled": enabled,
                "secret": secret,
            },
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else _subscription(row)


def delete_subscription(conn: Connection, *, tenant_id: int, subscription_id: int) -> bool:
    """Delete it and (by cascade) its delivery log; pending deliveries then do nothing."""
    result = conn.execute(
        text("DELETE FROM webhook_subscriptions WHERE tenant_id = :t AND id = :id RETURNING id"),
        {"t": tenant_id, "id": subscription_id},
    )
    return result.first() is not None


def insert_deliveries(conn: Connection, outbox_ids: Sequence[int]) -> list[PlannedDelivery]:
    """One delivery per (enabled subscription, outbox event of its topic), same tenant only.

    System scope. Idempotent: the unique (subscription_id, outbox_id) index makes a repeat a
    no-op, so only newly planned deliveries are returned.
    """
    rows = conn.execute(
        text(
            "INSERT INTO webhook_deliveries "
            "  (tenant_id, subscription_id, event, payload, outbox_id) "
            "SELECT o.tenant_id, s.id, o.topic, o.payload, o.id "
            "FROM outbox o JOIN webhook_subscriptions s "
            "  ON s.tenant_id = o.tenant_id AND s.enabled AND o.topic = ANY(s.events) "
            "WHERE o.id = ANY(:ids) ORDER BY o.id, s.id "
            "ON CONFLICT (subscription_id, outbox_id) WHERE outbox_id IS NOT NULL DO NOTHING "
            "RETURNING id, tenant_id"
        ),
        {"ids": list(outbox_ids)},
    ).all()
    return [PlannedDelivery(id=r[0], tenant_id=r[1]) for r in rows]


def start_attempt(conn: Connection, delivery_id: int) -> DeliveryJob | None:
    """Count one more attempt and return what to send (system scope).

    None when there is nothing to do: delivered already, the subscription deleted or disabled.
    """
    row = (
        conn.execute(
            text(
                "UPDATE webhook_deliveries d "
                "SET attempts = d.attempts + 1, last_attempt_at = now() "
                "FROM webhook_subscriptions s "
                "WHERE d.id = :id AND s.id = d.subscription_id AND s.tenant_id = d.tenant_id "
                "  AND s.enabled AND d.delivered_at IS NULL "
                "RETURNING d.id, d.tenant_id, d.subscription_id, d.outbox_id, d.event, "
                "  d.payload::text AS payload_json, d.created_at, d.attempts, s.url, s.secret"
            ),
            {"id": delivery_id},
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else DeliveryJob.model_validate(dict(row))


def record_attempt(
    conn: Connection,
    *,
    delivery_id: int,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    delivered: bool,
) -> None:
    """Store the outcome of the attempt start_attempt counted (system scope)."""
    conn.execute(
        text(
            "UPDATE webhook_deliveries SET status_code = :code, latency_ms = :latency, "
            "error = :error, delivered_at = CASE WHEN :delivered THEN now() END "
            "WHERE id = :id AND delivered_at IS NULL"
        ),
        {
            "id": delivery_id,
            "code": status_code,
            "latency": latency_ms,
            "error": error,
            "delivered": delivered,
        },
    )


# A delivery is dead while the dead letter of its deliver_webhook message is not requeued.
_DELIVERY_SELECT = """
    SELECT * FROM (
        SELECT d.id, d.subscription_id, d.outbox_id, d.event, d.status_code, d.latency_ms,
               d.attempts, d.error, d.last_attempt_at, d.delivered_at, d.created_at,
               CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered'
                    WHEN EXISTS (
                        SELECT 1 FROM dead_letters dl
                        WHERE dl.tenant_id = :t AND dl.actor = :actor
                          AND dl.requeued_at IS NULL
                          AND dl.payload -> 'args' ->> 0 = d.id::text) THEN 'dead'
                    WHEN d.attempts = 0 THEN 'pending'
                    ELSE 'retrying' END AS status
        FROM webhook_deliveries d
        WHERE d.tenant_id = :t AND d.subscription_id = :sub
          AND (CAST(:event AS text) IS NULL OR d.event = :event)
          AND (CAST(:before AS bigint) IS NULL OR d.id < :before)
    ) x
    WHERE (CAST(:status AS text) IS NULL OR x.status = :status)
    ORDER BY x.id DESC LIMIT :limit
"""


def list_deliveries(
    conn: Connection,
    *,
    tenant_id: int,
    subscription_id: int,
    status: DeliveryStatus | None,
    event: str | None,
    before_id: int | None,
    limit: int,
) -> list[Delivery]:
    """A subscription's delivery log, newest first."""
    rows = conn.execute(
        text(_DELIVERY_SELECT),
        {
            "t": tenant_id,
            "actor": DELIVER_ACTOR,
            "sub": subscription_id,
            "status": status,
            "event": event,
            "before": before_id,
            "limit": limit,
        },
    ).mappings()
    return [Delivery.model_validate(dict(r)) for r in rows]


def get_unfinished_deliveries(
    conn: Connection, *, older_than_s: int, retry_lost_after_s: int, limit: int
) -> list[int]:
    """Deliveries whose broker message was lost: never attempted past the deadline, or
    attempted, neither delivered nor dead-lettered, and not tried again long past any
    backoff (`retry_lost_after_s`) to an enabled subscription.

    Marks them offered now, so the next sweep waits another deadline. System scope.
    """
    rows = conn.execute(
        text(
            """
            UPDATE webhook_deliveries SET last_attempt_at = now()
            WHERE id IN (
                SELECT d.id FROM webhook_deliveries d
                WHERE d.delivered_at IS NULL AND (
                    (d.attempts = 0 AND coalesce(d.last_attempt_at, d.created_at)
                                        < now() - make_interval(secs => :age))
                    OR (d.attempts > 0
                        AND d.last_attempt_at < now() - make_interval(secs => :retry_lost_s)
                        AND EXISTS (SELECT 1 FROM webhook_subscriptions s
                                    WHERE s.id = d.subscription_id AND s.enabled)
                        -- Filed under no tenant when the sweep sent it: match by id alone.
                        AND NOT EXISTS (SELECT 1 FROM dead_letters dl
                                        WHERE dl.actor = :actor AND dl.requeued_at IS NULL
                                          AND dl.payload -> 'args' ->> 0 = d.id::text)))
                ORDER BY d.id LIMIT :limit
                FOR UPDATE OF d SKIP LOCKED)
            RETURNING id
            """
        ),
        {
            "age": older_than_s,
            "retry_lost_s": retry_lost_after_s,
            "actor": DELIVER_ACTOR,
            "limit": limit,
        },
    ).all()
    return sorted(int(r[0]) for r in rows)
