"""validate: parse raw inbox bodies with their channel's adapter (pure, never raises)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from adapters.base import InboundAdapter
from engine.events import (
    ChannelType,
    InboundEvent,
    MalformedEvent,
)
from engine.logs import binds_correlation
from engine.metrics import timed_stage
from engine.store.inbox import InboxRow
from pipelines.inbound.models import (
    ValidatedEvent,
    without_nul,
)

log = logging.getLogger(__name__)

# validate ------------------------------------------------------------------------------

# How a NUL reaches a parsed string: a JSON escape, a raw byte, a form-encoded one.
_NUL_FORMS = (b"\\u0000", b"\x00", b"%00")


def _may_hold_nul(body: bytes) -> bool:
    return any(form in body for form in _NUL_FORMS)


@binds_correlation
@timed_stage("validate")
def validate(
    rows: Sequence[InboxRow], *, adapters: Mapping[ChannelType, InboundAdapter]
) -> list[ValidatedEvent]:
    """Parse each raw body with its channel's adapter. Pure; never raises for bad bodies."""
    out: list[ValidatedEvent] = []
    for row in rows:
        adapter = adapters.get(row.channel_type)
        events: Sequence[InboundEvent]
        if adapter is None:
            events = [MalformedEvent(reason=f"no adapter for {row.channel_type}", fragment="")]
        else:
            events = adapter.parse(
                row.body, address_id=row.address_id, content_type=row.content_type
            )
            if _may_hold_nul(row.body):
                events = [without_nul(e) for e in events]
        for position, event in enumerate(events):
            out.append(
                ValidatedEvent(
                    inbox_id=row.id,
                    tenant_id=row.tenant_id,
                    channel_id=row.channel_id,
                    channel_type=row.channel_type,
                    position=position,
                    event=event,
                )
            )
    return out
