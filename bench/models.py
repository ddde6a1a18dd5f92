"""What a run is asked to do (Plan) and what it measured (IngestRun, E2ERun, OutboundRun)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.infra import Services
from bench.loadgen import LoadResult

Trace = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Plan:
    """Sizes and settings of one run, shared by FlowDesk and its baseline."""

    services: Services
    # The bare endpoint answers 5,000 in under a second, where one scheduling hiccup moves the
    # ratio by a tenth; 20,000 give the baseline a window of a few seconds.
    requests: int = 20_000
    warmup: int = 500
    concurrency: int = 64
    events: int = 5_000
    e2e_warmup: int = 200
    contacts: int = 500
    threads: int = 4
    sends: int = 3_000  # outbound sends with the rate limit out of the way
    paced_sends: int = 800  # outbound sends at WhatsApp's default limit
    campaign_recipients: int = 100_000  # the campaign scenario's audience
    timeout_s: float = 180.0
    trace_path: str | None = None  # set: run the FlowDesk worker under bench.traced_worker
    tunables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchStats:
    batches: int
    median: float
    p90: float
    max: int

    @staticmethod
    def of(sizes: list[int]) -> BatchStats:
        if not sizes:
            return BatchStats(0, 0.0, 0.0, 0)
        ordered = sorted(sizes)
        return BatchStats(
            len(ordered),
            statistics.median(ordered),
            float(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]),
            ordered[-1],
        )


@dataclass(frozen=True)
class IngestRun:
    load: LoadResult
    web_cpu_ms_per_request: float  # warm-up included
    inbox_rows: int | None = None
    group_commits: BatchStats | None = None


@dataclass(frozen=True)
class E2ERun:
    events: int
    elapsed_s: float
    eps: float
    cpu_ms_per_event: dict[str, float]
    ingest_rps: float | None = None
    worker_batches: BatchStats | None = None
    web_group_commits: BatchStats | None = None
    dead_letters: int | None = None
    trace: Trace | None = None


@dataclass(frozen=True)
class OutboundRun:
    """N pending messages enqueued for send_messages (batches), timed from first enqueue to last
    `sent`."""

    sends: int
    elapsed_s: float
    sps: float
    rate_per_s: float  # the channel's configured limit
    burst: int
    cpu_ms_per_send: dict[str, float]
    latency_p50_ms: float  # sent (status_at) minus enqueue, per message
    latency_p99_ms: float
    steady_sps: float | None  # over the second half of the sends; None when the burst covers it
    provider_requests: int  # what the sandbox recorded, warm-up included
    expected_requests: int
    exactly_once: bool  # one request per message, and its id is the one stored
    attempts: int  # provider calls counted in messages.send_attempts (throttles are not)
    dead_letters: int
    trace: Trace | None = None


@dataclass(frozen=True)
class CampaignRun:
    """A campaign to N recipients: its audience freeze, then its sends at the channel's limit,
    timed from the first `sent` to the last."""

    recipients: int
    freeze_s: float  # the start's transaction, which freezes the audience
    freeze_rps: float  # recipients frozen per second
    send_elapsed_s: float
    sps: float
    steady_sps: float | None  # over the second half of the sends
    rate_per_s: float  # the channel's configured limit
    burst: int
    limit_ratio: float  # sps / rate_per_s
    cpu_ms_per_send: dict[str, float]
    provider_requests: int
    exactly_once: bool  # one accepted provider request per recipient, one message per contact
    dead_letters: int
