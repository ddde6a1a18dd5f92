"""Outbound pipeline: validate ▸ enrich ▸ route ▸ persist ▸ deliver ▸ ack, for every sender.

`request` (validate, persist) runs where the send is asked for and records the message
`pending` before any provider call; `batch` (claim, enrich, route, pace, deliver, ack) runs in a
worker over many messages at once; `single` is its one-message form that fails by raising.
"""

from pipelines.outbound.batch import SEND_BUDGET_S, BatchOutcome, run_batch
from pipelines.outbound.pace import SEND_BATCH, Resend
from pipelines.outbound.request import RecordedSend, SendRequest, record_send
from pipelines.outbound.settle import SendPolicy
from pipelines.outbound.single import SendOutcome, run_send

STAGES = ("validate", "enrich", "route", "persist", "deliver", "ack")
OUTBOUND_QUEUE = "outbound"

__all__ = [
    "OUTBOUND_QUEUE",
    "SEND_BATCH",
    "SEND_BUDGET_S",
    "STAGES",
    "BatchOutcome",
    "RecordedSend",
    "Resend",
    "SendOutcome",
    "SendPolicy",
    "SendRequest",
    "record_send",
    "run_batch",
    "run_send",
]
