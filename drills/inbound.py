"""The inbound drills: a webhook stream through the real engine while one kind of fault strikes
again and again, then the database checked against every accepted webhook."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import infra
from bench.payloads import APP_SECRET
from drills.check import pending_inbox, processed_inbox, seed_outbound, settle, tally
from drills.driver import Driver
from drills.report import Row
from drills.stack import Broker, Stack
from drills.workload import build_workload

RECOVERY_TIMEOUT_S = 120.0
MAX_FAULTS = 4
DRIVE_TIMEOUT_S = 900.0
POSTGRES_DOWN_S = 4.0


@dataclass(frozen=True)
class Drill:
    name: str
    summary: str
    strike: Callable[[Stack], None]  # one fault, repaired before it returns
    during_ingest_only: bool  # False: keep striking while the backlog is processed


def _kill_workers(stack: Stack) -> None:
    stack.kill_worker()
    stack.start_worker()


def _lose_broker(stack: Stack) -> None:
    stack.lose_broker_messages()


def _restart_postgres(stack: Stack) -> None:
    stack.stop_postgres()
    time.sleep(POSTGRES_DOWN_S)  # meanwhile webhooks are answered 503 and retried
    stack.start_postgres()


def _kill_web(stack: Stack) -> None:
    stack.kill_web()
    stack.start_web()


DRILLS = {
    d.name: d
    for d in (
        Drill(
            "kill-workers", "workers SIGKILLed at random moments, restarted", _kill_workers, False
        ),
        Drill("broker-loss", "Redis FLUSHALL / RabbitMQ queues purged", _lose_broker, False),
        Drill("postgres-restart", "PostgreSQL stopped 4 s, started again", _restart_postgres, True),
        Drill("kill-web", "web SIGKILLed with requests in flight, restarted", _kill_web, True),
    )
}


def run_inbound(
    drill: Drill, broker: Broker, *, events: int, max_faults: int = MAX_FAULTS, seed: int = 5
) -> Row:
    rng = random.Random(seed)
    stack = Stack(broker, label=drill.name)
    leftovers: list[str] = []
    try:
        services = stack.start()
        channel_id = infra.seed_channel(services)
        workload = build_workload(events, contacts=max(1, events // 10), run_tag=stack.prefix)
        seed_outbound(services, channel_id, workload.outbound_ids)
        stack.start_engine()
        url = f"http://127.0.0.1:{stack.web_port}/webhooks/whatsapp/{channel_id}"
        driver = Driver(url, workload.posts, secret=APP_SECRET).start()
        recoveries = _strike_repeatedly(drill, stack, driver, rng, max_faults)
        driver.join(DRIVE_TIMEOUT_S)
        accepted = driver.result.accepted_effects
        settle(services, accepted)
        result = tally(services, accepted)
    finally:
        leftovers = stack.close()
    return Row(
        drill=drill.name,
        broker=broker,
        sent=driver.result.sent,
        accepted=driver.result.accepted,
        applied=result.applied,
        lost=result.lost,
        duplicated=result.duplicated,
        recovery_s=max(recoveries, default=0.0),
        faults=len(recoveries),
        notes=(*result.lost_examples, *result.duplicate_kinds, *_gave_up(driver), *leftovers),
    )


def _strike_repeatedly(
    drill: Drill, stack: Stack, driver: Driver, rng: random.Random, max_faults: int
) -> list[float]:
    """Strike at random moments while there is work to disrupt; each strike's recovery time."""
    assert stack.services is not None
    services = stack.services
    recoveries: list[float] = []

    def busy() -> bool:
        if not driver.done.is_set():
            return True
        return not drill.during_ingest_only and pending_inbox(services) > 0

    while len(recoveries) < max_faults:
        if not _sleep_while(busy, rng.uniform(0.5, 3.0)):
            break
        before = processed_inbox(services)
        drill.strike(stack)
        recoveries.append(_recovery_s(stack, driver, time.time(), before))
    return recoveries


def _sleep_while(busy: Callable[[], bool], seconds: float) -> bool:
    """Sleep `seconds` unless work runs out first; True if there is still work to disrupt."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not busy():
            return False
        time.sleep(0.1)
    return busy()


def _recovery_s(stack: Stack, driver: Driver, repaired_at: float, before: int | None) -> float:
    """From the repair until webhooks are accepted again and the pipeline applies work again
    (or has none left)."""
    assert stack.services is not None
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        ingest_ok = driver.done.is_set() or driver.result.last_ok_at > repaired_at
        processed = processed_inbox(stack.services)
        pipeline_ok = processed is not None and (
            (before is not None and processed > before) or pending_inbox(stack.services) == 0
        )
        if ingest_ok and pipeline_ok:
            return time.time() - repaired_at
        time.sleep(0.05)
    return math.inf


def _gave_up(driver: Driver) -> tuple[str, ...]:
    if not driver.result.gave_up:
        return ()
    return (f"{driver.result.gave_up} posts never answered 2xx: {dict(driver.result.answers)}",)
