"""Metrics for a batch's verdicts: deliveries, provider errors and campaign sends."""

from __future__ import annotations

from engine.metrics import CAMPAIGN_SENDS, DELIVERIES, PROVIDER_ERRORS, error_code_label
from engine.store.send_batch import ClaimedSend
from pipelines.outbound.send import Failing, Refused, Sent, Verdict


def count_verdict(job: ClaimedSend, verdict: Verdict, *, final: bool) -> None:
    """Count what one send came to; `final` when settling fails the message for good.
    Throttled and deferred sends never reached the provider."""
    channel = str(job.channel.type)
    if isinstance(verdict, Sent):
        outcome = "sent"
        DELIVERIES.labels(channel=channel, status="sent").inc()
    elif isinstance(verdict, Refused | Failing):
        outcome = "failed" if final else "retrying"
        code = getattr(verdict.error, "code", None) or type(verdict.error).__name__
        PROVIDER_ERRORS.labels(channel=channel, code=error_code_label(code)).inc()
        if outcome == "failed":
            DELIVERIES.labels(channel=channel, status="failed").inc()
    else:
        return
    if job.send_type == "campaign":
        CAMPAIGN_SENDS.labels(outcome=outcome).inc()
