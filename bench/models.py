"""What a run is asked to do (Plan) and what it measured (IngestRun, E2ERun)."""

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
    requests: int = 5_000
    warmup: int = 500
    concurrency: int = 64
    events: int = 5_000
    e2e_warmup: int = 200
    contacts: int = 500
    threads: int = 4
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
