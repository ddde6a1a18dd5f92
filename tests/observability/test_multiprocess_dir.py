"""The metrics directory a run starts with: emptied of stale files, then written by each process.

Each case runs in a child interpreter, because switching to multiprocess mode is for a whole
process (and its children) and must not leak into this test process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

_RECORD = """
import sys
from pathlib import Path
from engine.metrics import WEBHOOKS_RECEIVED, prepare_multiprocess
prepare_multiprocess(Path(sys.argv[1]), fresh=sys.argv[2] == "fresh")
WEBHOOKS_RECEIVED.labels(channel="telegram", outcome="accepted").inc()
"""


def _record(path: Path, mode: str) -> None:
    subprocess.run([sys.executable, "-c", _RECORD, str(path), mode], check=True, timeout=60)


def _accepted(path: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    labels = {"channel": "telegram", "outcome": "accepted"}
    return registry.get_sample_value("flowdesk_webhooks_received_total", labels) or 0.0


def test_processes_of_a_run_are_summed_and_a_new_run_starts_from_zero(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    _record(metrics, "fresh")
    _record(metrics, "join")
    _record(metrics, "join")
    assert _accepted(metrics) == 3
    (metrics / "notes.txt").write_text("not ours")

    _record(metrics, "fresh")
    assert _accepted(metrics) == 1
    assert (metrics / "notes.txt").read_text() == "not ours"
