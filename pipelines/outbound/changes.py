"""Carry out an agent's edit or deletion of a sent message at the provider, then settle it.

The provider is asked outside any transaction; the change is settled (and the message
updated) only once it has answered. A permanent refusal settles the change `failed` with the
provider's reason and is not retried; an outage or a 429 is retried by the middleware, and the
last attempt settles it `failed` before the dead letter is filed.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from sqlalchemy import Engine

from adapters.base import MessageEditor, OutboundAdapter
from engine.db import tenant_tx
from engine.errors import PermanentError, ProviderRejectedError, RetryableError
from engine.events import ChannelConnection, ChannelType
from engine.store.channels import get_channel
from engine.store.message_changes import ChangeJob, claim_change, release_change, settle_change


def run_change(
    tenant_id: int,
    change_id: int,
    *,
    db: Engine,
    adapters: Mapping[ChannelType, OutboundAdapter],
    http: httpx.Client,
    last_attempt: bool,
) -> list[int]:
    """Apply one pending change; the outbox ids to publish. Settled changes are left alone.

    Raises RetryableError while attempts remain (nothing settled), and re-raises it on the
    last attempt after settling the change failed.
    """
    with tenant_tx(db, tenant_id) as conn:
        job = claim_change(conn, tenant_id=tenant_id, change_id=change_id)
        channel = None if job is None else get_channel(conn, job.channel_id)
    if job is None:
        return []
    try:
        if channel is None:
            raise ProviderRejectedError("the channel was deleted", code="channel_deleted")
        adapter = adapters.get(channel.type)
        if not isinstance(adapter, MessageEditor):
            raise ProviderRejectedError(
                f"{channel.type.value} cannot change a sent message", code="unsupported"
            )
        _ask_provider(adapter, job, channel=channel.connection(), http=http)
    except PermanentError as exc:
        return _settle(db, job, error=exc)
    except RetryableError as exc:
        if last_attempt:
            _settle(db, job, error=exc)
        else:
            with tenant_tx(db, tenant_id) as conn:
                release_change(conn, job)
        raise
    return _settle(db, job, error=None)


def _ask_provider(
    adapter: MessageEditor, job: ChangeJob, *, channel: ChannelConnection, http: httpx.Client
) -> None:
    if job.kind == "delete":
        adapter.delete_message(job.provider_message_id, channel=channel, http=http)
        return
    assert job.body is not None  # the table's CHECK holds it
    adapter.edit_message(
        job.provider_message_id,
        body=job.body,
        message_type=job.message_type,
        channel=channel,
        http=http,
    )


def _settle(db: Engine, job: ChangeJob, *, error: Exception | None) -> list[int]:
    code = None
    if error is not None:
        code = getattr(error, "code", None) or type(error).__name__
    with tenant_tx(db, job.tenant_id) as conn:
        return settle_change(
            conn,
            job,
            error_code=None if error is None else str(code),
            error_message=None if error is None else str(error)[:500],
        )
