"""Inbound pipeline: validate ▸ enrich ▸ route ▸ persist ▸ ack over a batch of inbox rows.

Everything runs inside the caller's single transaction; `deliver` (realtime, tenant webhooks,
media downloads) happens after commit, from what the batch outcome lists.
"""

from pipelines.inbound.ack import ack
from pipelines.inbound.batch import process_batch
from pipelines.inbound.enrich import contact_lock_key, enrich
from pipelines.inbound.models import (
    INBOUND_ACTOR,
    INBOUND_QUEUE,
    STAGES,
    BatchOutcome,
    EnrichedEvent,
    RoutedEvent,
    ValidatedEvent,
)
from pipelines.inbound.persist import persist
from pipelines.inbound.route import route
from pipelines.inbound.validate import validate

__all__ = [
    "INBOUND_ACTOR",
    "INBOUND_QUEUE",
    "STAGES",
    "BatchOutcome",
    "EnrichedEvent",
    "RoutedEvent",
    "ValidatedEvent",
    "ack",
    "contact_lock_key",
    "enrich",
    "persist",
    "process_batch",
    "route",
    "validate",
]
