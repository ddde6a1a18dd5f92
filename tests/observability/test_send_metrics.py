"""What a batch of sends adds to the delivery, provider-error and campaign metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from engine.errors import ProviderRejectedError, ProviderUnavailableError, RateLimitedError
from engine.events import ChannelConnection, ChannelType, MessageType, SendResult
from engine.metrics import MAX_ERROR_CODES, error_code_label
from engine.store.send_batch import ClaimedSend
from pipelines.outbound.send import Failing, Refused, Sent, Throttled, Verdict
from pipelines.outbound.settle import SendPolicy, decide


def _job(message_id: int, *, attempt: int = 1, send_type: str = "campaign") -> ClaimedSend:
    return ClaimedSend(
        message_id=message_id,
        tenant_id=1,
        ticket_id=1,
        channel_id=5,
        contact_id=1,
        channel_type=ChannelType.SMS,
        type=MessageType.TEXT,
        body="hello",
        media_url=None,
        filename=None,
        quoted_provider_message_id=None,
        template=None,
        subject=None,
        thread_ids=(),
        recipient="+15005550006",
        last_inbound_at=None,
        opted_out=False,
        unreachable=False,
        attempt=attempt,
        channel=ChannelConnection(id=5, tenant_id=1, type=ChannelType.SMS, external_id="x"),
        send_type=send_type,
    )


def _snapshot() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    names = (
        "flowdesk_deliveries_total",
        "flowdesk_provider_errors_total",
        "flowdesk_campaign_sends_total",
    )
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name in names
    }


def test_verdicts_are_counted_by_channel_status_code_and_campaign_outcome() -> None:
    jobs = [_job(1), _job(2), _job(3), _job(4, attempt=3), _job(5), _job(6, send_type="chat")]
    verdicts: dict[int, Verdict] = {
        1: Sent(SendResult(provider_message_id="SM1")),
        2: Refused(ProviderRejectedError("unsubscribed recipient", code="21610")),
        3: Failing(ProviderUnavailableError("503 from provider")),
        4: Failing(ProviderUnavailableError("503 from provider")),
        5: Throttled(delay_ms=100, reserved=False),
        6: Sent(SendResult(provider_message_id="SM6")),
    }
    policy = SendPolicy(backoff_ms=lambda attempt: 10, max_attempts=3, record_dead_letters=False)
    before = _snapshot()
    decide(jobs, verdicts, policy)
    after = _snapshot()
    added = {key: value - before.get(key, 0.0) for key, value in after.items()}
    assert {key: value for key, value in added.items() if value} == {
        ("flowdesk_deliveries_total", (("channel", "sms"), ("status", "sent"))): 2,
        ("flowdesk_deliveries_total", (("channel", "sms"), ("status", "failed"))): 2,
        ("flowdesk_provider_errors_total", (("channel", "sms"), ("code", "21610"))): 1,
        (
            "flowdesk_provider_errors_total",
            (("channel", "sms"), ("code", "ProviderUnavailableError")),
        ): 2,
        ("flowdesk_campaign_sends_total", (("outcome", "sent"),)): 1,
        ("flowdesk_campaign_sends_total", (("outcome", "failed"),)): 2,
        ("flowdesk_campaign_sends_total", (("outcome", "retrying"),)): 1,
    }


def test_a_429_on_the_last_attempt_counts_as_retrying_as_it_is_sent_again() -> None:
    policy = SendPolicy(backoff_ms=lambda attempt: 10, max_attempts=3, record_dead_letters=False)
    before = _snapshot()
    plan = decide([_job(1, attempt=3)], {1: Failing(RateLimitedError("429 from provider"))}, policy)
    after = _snapshot()
    added = {key: value - before.get(key, 0.0) for key, value in after.items()}

    assert plan.failures == [] and plan.releases == [(1, True)]
    assert {key: value for key, value in added.items() if value} == {
        ("flowdesk_provider_errors_total", (("channel", "sms"), ("code", "RateLimitedError"))): 1,
        ("flowdesk_campaign_sends_total", (("outcome", "retrying"),)): 1,
    }


def test_provider_error_codes_cannot_grow_without_bound() -> None:
    labels = {error_code_label(f"E{n}") for n in range(MAX_ERROR_CODES * 2)}
    assert "other" in labels
    assert len(labels) <= MAX_ERROR_CODES + 1
    assert error_code_label("free text with spaces") == "other"
    assert error_code_label("x" * 40) == "other"
    assert error_code_label(None) in {"none", "other"}
