"""Outbound webhook subscriptions of a tenant, and each subscription's delivery log."""

from __future__ import annotations

import secrets

from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.webhook_models import (
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    PageCursor,
    SecretIn,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionPatch,
    SubscriptionQuery,
    SubscriptionWithSecret,
)
from engine.store import webhooks as store

router = ApiRouter("webhook-subscriptions")

BASE = "/api/v1/webhook-subscriptions"
_SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker that makes leaked secrets easy to recognise


def _out(sub: store.Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(sub.model_dump(exclude={"tenant_id"}))


def _with_secret(sub: store.Subscription, secret: str) -> SubscriptionWithSecret:
    return SubscriptionWithSecret(**_out(sub).model_dump(), secret=secret)


def _new_secret() -> str:
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


@router.get(
    BASE,
    Permission.INTEGRATIONS_MANAGE,
    query=SubscriptionQuery,
    response=SubscriptionPage,
    summary="List webhook subscriptions",
)
async def list_webhook_subscriptions(call: Call[NoBody, SubscriptionQuery]) -> SubscriptionPage:
    """Newest first. Filter by enabled, by event, or by part of the URL (`q`)."""
    q = call.query
    async with call.tx() as conn:
        rows = await conn.run_sync(
            lambda c: store.list_subscriptions(
                c,
                tenant_id=call.tenant_id,
                enabled=q.enabled,
                event=q.event,
                q=q.q,
                before_id=q.cursor,
                limit=q.limit + 1,
            )
        )
    items = [_out(r) for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return SubscriptionPage(
        items=items, next_cursor=PageCursor.encode(items[-1].id) if more else None
    )


@router.post(
    BASE,
    Permission.INTEGRATIONS_MANAGE,
    body=SubscriptionIn,
    response=SubscriptionWithSecret,
    status=201,
    summary="Create a webhook subscription",
)
async def create_webhook_subscription(
    call: Call[SubscriptionIn, NoQuery],
) -> SubscriptionWithSecret:
    """The response carries the signing secret; it is never shown again (rotate it if lost)."""
    body = call.body
    secret = body.secret or _new_secret()
    async with call.tx() as conn:
        sub = await conn.run_sync(
            lambda c: store.insert_subscription(
                c,
                tenant_id=call.tenant_id,
                url=body.url,
                events=body.events,
                secret=secret,
                enabled=body.enabled,
            )
        )
    return _with_secret(sub, secret)


@router.get(
    BASE + "/{id}",
    Permission.INTEGRATIONS_MANAGE,
    response=SubscriptionOut,
    summary="Get a webhook subscription",
)
async def get_webhook_subscription(call: Call[NoBody, NoQuery]) -> SubscriptionOut:
    async with call.tx() as conn:
        sub = await conn.run_sync(
            lambda c: store.get_subscription(c, tenant_id=call.tenant_id, subscription_id=call.id())
        )
    if sub is None:
        raise not_found("Webhook subscription")
    return _out(sub)


@router.patch(
    BASE + "/{id}",
    Permission.INTEGRATIONS_MANAGE,
    body=SubscriptionPatch,
    response=SubscriptionOut,
    summary="Change a webhook subscription",
)
async def update_webhook_subscription(call: Call[SubscriptionPatch, NoQuery]) -> SubscriptionOut:
    """Change its URL, events or enabled flag. Deliveries already planned keep their event."""
    body = call.body
    async with call.tx() as conn:
        sub = await conn.run_sync(
            lambda c: store.update_subscription(
                c,
                tenant_id=call.tenant_id,
                subscription_id=call.id(),
                url=body.url,
                events=body.events,
                enabled=body.enabled,
            )
        )
    if sub is None:
        raise not_found("Webhook subscription")
    return _out(sub)


@router.post(
    BASE + "/{id}/rotate-secret",
    Permission.INTEGRATIONS_MANAGE,
    body=SecretIn,
    response=SubscriptionWithSecret,
    summary="Replace a webhook subscription's signing secret",
)
async def rotate_webhook_secret(call: Call[SecretIn, NoQuery]) -> SubscriptionWithSecret:
    """The new secret signs every attempt from now on, retries of older deliveries too."""
    secret = call.body.secret or _new_secret()
    async with call.tx() as conn:
        sub = await conn.run_sync(
            lambda c: store.update_subscription(
                c, tenant_id=call.tenant_id, subscription_id=call.id(), secret=secret
            )
        )
    if sub is None:
        raise not_found("Webhook subscription")
    return _with_secret(sub, secret)


@router.delete(
    BASE + "/{id}",
    Permission.INTEGRATIONS_MANAGE,
    status=204,
    summary="Delete a webhook subscription",
)
async def delete_webhook_subscription(call: Call[NoBody, NoQuery]) -> None:
    """Its delivery log goes with it; deliveries still queued are dropped."""
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: store.delete_subscription(
                c, tenant_id=call.tenant_id, subscription_id=call.id()
            )
        )
    if not deleted:
        raise not_found("Webhook subscription")


@router.get(
    BASE + "/{id}/deliveries",
    Permission.INTEGRATIONS_MANAGE,
    query=DeliveryQuery,
    response=DeliveryPage,
    summary="A webhook subscription's delivery log",
)
async def list_webhook_deliveries(call: Call[NoBody, DeliveryQuery]) -> DeliveryPage:
    """Newest first: status (pending, retrying, delivered, dead), last HTTP status code,
    latency, attempts and last error of each delivery."""
    q = call.query
    async with call.tx() as conn:
        sub = await conn.run_sync(
            lambda c: store.get_subscription(c, tenant_id=call.tenant_id, subscription_id=call.id())
        )
        if sub is None:
            raise not_found("Webhook subscription")
        rows = await conn.run_sync(
            lambda c: store.list_deliveries(
                c,
                tenant_id=call.tenant_id,
                subscription_id=sub.id,
                status=q.status,
                event=q.event,
                before_id=q.cursor,
                limit=q.limit + 1,
            )
        )
    items = [
        DeliveryOut(**r.model_dump(exclude={"outbox_id"}), event_id=r.outbox_id)
        for r in rows[: q.limit]
    ]
    cursor = PageCursor.encode(items[-1].id) if len(rows) > q.limit else None
    return DeliveryPage(items=items, next_cursor=cursor)
