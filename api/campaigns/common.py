"""What the campaign endpoints share: the router, reference checks, errors, after-commit work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection

from actors.deliver import publish_outbox
from api.errors import ApiError, ErrorDetail, invalid_field
from api.framework import ApiRouter
from api.resources.common import unknown_ids
from engine.campaigns import (
    Audience,
    CampaignInputError,
    CampaignStateError,
    InvalidTransitionError,
    Variant,
)
from engine.errors import NotFoundError
from engine.events import template_refusal
from engine.store import campaigns as store

router = ApiRouter("campaigns")

CHANNEL_DISCONNECTED = (
    "Channel disconnected: reconnect the campaign's channel before scheduling or starting it."
)


def not_found() -> ApiError:
    return ApiError(404, "not_found", "Campaign not found.")


@contextmanager
def campaign_errors() -> Iterator[None]:
    """Domain errors as the API answers them: 404, or 409 saying why the change cannot be."""
    try:
        yield
    except NotFoundError:
        raise not_found() from None
    except InvalidTransitionError as exc:
        raise ApiError(409, "invalid_transition", str(exc)) from None
    except store.ChannelDisconnectedError:
        raise channel_disconnected() from None
    except CampaignInputError as exc:
        raise invalid_field(exc.field, str(exc)) from None
    except CampaignStateError as exc:
        raise conflict_field(exc.field, str(exc)) from None


def channel_disconnected() -> ApiError:
    return ApiError(409, "channel_disconnected", CHANNEL_DISCONNECTED)


def check_references(
    conn: Connection,
    *,
    tenant_id: int,
    channel_id: int | None,
    audience: Audience | None,
    variants: Sequence[Variant] = (),
) -> None:
    """422 naming the channel, tags, contacts or import that are not the tenant's rows, or a
    variant's WhatsApp template on a channel of another kind."""
    if channel_id is not None and (
        store.get_channel_state(conn, tenant_id=tenant_id, channel_id=channel_id) is None
    ):
        raise invalid_field("channel_id", f"no channel {channel_id} in this tenant")
    if channel_id is not None:
        check_templates(conn, tenant_id=tenant_id, channel_id=channel_id, variants=variants)
    if audience is None:
        return
    if audience.tag_ids is not None:
        known = store.known_tag_ids(conn, tenant_id=tenant_id, ids=audience.tag_ids)
        problem = unknown_ids("audience.tag_ids", audience.tag_ids, known, "tag")
        if problem is not None:
            raise problem
    if audience.contact_ids is not None:
        known = store.known_contact_ids(conn, tenant_id=tenant_id, ids=audience.contact_ids)
        problem = unknown_ids("audience.contact_ids", audience.contact_ids, known, "contact")
        if problem is not None:
            raise problem
    if audience.csv_import_id is not None and not store.import_exists(
        conn, tenant_id=tenant_id, import_id=audience.csv_import_id
    ):
        raise invalid_field(
            "audience.csv_import_id", f"no import {audience.csv_import_id} in this tenant"
        )


def check_templates(
    conn: Connection, *, tenant_id: int, channel_id: int, variants: Sequence[Variant]
) -> None:
    """422 when a variant carries a WhatsApp template and the channel is not WhatsApp."""
    with_template = [n for n, v in enumerate(variants) if v.template is not None]
    if not with_template:
        return
    state = store.get_channel_state(conn, tenant_id=tenant_id, channel_id=channel_id)
    refusal = None if state is None else template_refusal(state[0])
    if refusal is not None:
        raise invalid_field(f"variants.{with_template[0]}.template", refusal)


def conflict_field(field: str, message: str) -> ApiError:
    """A 409 about the campaign's state, naming the field that stands in the way."""
    return ApiError(409, "conflict", message, details=(ErrorDetail(field=field, message=message),))


async def publish(*outbox_ids: int) -> None:
    """Publish `campaign.progress` events once committed; a lost enqueue is swept later."""
    if outbox_ids:
        await asyncio.to_thread(publish_outbox.send, list(outbox_ids))
