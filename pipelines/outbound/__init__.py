"""Outbound pipeline: validate ▸ enrich ▸ route ▸ persist ▸ deliver ▸ ack, for every sender.

`request` (validate, persist) runs where the send is asked for and records the message
`pending` before any provider call; `send` (enrich, route, deliver, ack) runs in a worker.
"""

from pipelines.outbound.request import RecordedSend, SendRequest, record_send
from pipelines.outbound.send import SendOutcome, run_send

STAGES = ("validate", "enrich", "route", "persist", "deliver", "ack")
OUTBOUND_QUEUE = "outbound"

__all__ = [
    "OUTBOUND_QUEUE",
    "STAGES",
    "RecordedSend",
    "SendOutcome",
    "SendRequest",
    "record_send",
    "run_send",
]
