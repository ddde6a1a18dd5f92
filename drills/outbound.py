"""The outbound burst drill: thousands of replies at once to a provider that answers 429 or 5xx
to 30% of calls. Every send must end final, and the provider must see each accepted once."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

from adapters.sandbox import Sandbox, SandboxState
from adapters.sandbox.state import Fault, Provider
from bench import infra
from bench.outbound import GRAPH_VERSION, record_pending
from drills.report import Row
from drills.stack import Broker, Stack
from engine.events import ChannelConfig

FAILURE_RATIO = 0.30
OUTBOUND_SUMMARY = "a burst of sends to a provider failing 30% of calls with 429/500"
SENDS_PER_EVENT = 4  # a burst of events/4 sends next to the inbound drills' events
RATE_PER_S = 200.0  # the channel's own token bucket engages too
BURST = 50
FINAL = ("sent", "delivered", "read", "failed")
BURST_TIMEOUT_S = 600.0


class FlakyState(SandboxState):
    """A sandbox where each WhatsApp call fails with `ratio` probability: half 429 with
    Retry-After, half 500."""

    def __init__(self, ratio: float, seed: int = 3) -> None:
        super().__init__()
        self._ratio = ratio
        self._rng = random.Random(seed)
        self._rate_limit = Fault("whatsapp", "rate_limit", count=1, retry_after_s=1)

    def take_fault(self, provider: Provider) -> Fault | None:
        if provider != "whatsapp" or self._rng.random() >= self._ratio:
            return super().take_fault(provider)
        if self._rng.random() < 0.5:
            return self._rate_limit
        return replace(self._rate_limit, mode="server_error")


def run_outbound(broker: Broker, *, sends: int) -> Row:
    stack = Stack(broker, label="outbound-burst")
    state = FlakyState(FAILURE_RATIO)
    try:
        with Sandbox(state=state) as sandbox:
            services = stack.start()
            config = ChannelConfig(
                api_base_url=f"{sandbox.http_url}/{GRAPH_VERSION}",
                rate_per_s=RATE_PER_S,
                burst=BURST,
            )
            record_pending(services, config, sends)  # the scheduler's sweep sends them
            started = time.time()
            stack.start_engine()
            _wait_final(services, sends)
            elapsed = time.time() - started
            outcome = _outcome(services)
            receipts = Counter(
                str(r.json.get("to"))
                for r in state.requests(provider="whatsapp")
                if r.status == 200 and isinstance(r.json, dict)
            )
            failures = sum(1 for r in state.requests(provider="whatsapp") if r.fault is not None)
    finally:
        leftovers = stack.close()
    duplicated = sum(n - 1 for n in receipts.values())
    final = sum(n for status, n in outcome.items() if status in FINAL)
    notes = [f"provider answered {failures} calls with 429/5xx"]
    notes += [f"{n} sends ended {s}" for s, n in outcome.items() if s not in ("sent",)]
    return Row(
        drill="outbound-burst",
        broker=broker,
        sent=sends,
        accepted=sends,
        applied=final,
        lost=sends - final,
        duplicated=duplicated,
        recovery_s=elapsed,
        faults=failures,
        notes=(*notes, *leftovers),
    )


def _wait_final(services: infra.Services, sends: int) -> None:
    deadline = time.monotonic() + BURST_TIMEOUT_S
    while time.monotonic() < deadline:
        outcome = _outcome(services)
        if sum(n for s, n in outcome.items() if s in FINAL) >= sends:
            return
        time.sleep(1.0)


def _outcome(services: infra.Services) -> dict[str, int]:
    rows = infra.rows(
        services, "SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY status"
    )
    return {str(r[0]): int(str(r[1])) for r in rows}
