"""Dramatiq module for `--trace` runs: the FlowDesk worker, plus wall time per SQL statement."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from sqlalchemy import event

import actors.worker_entry  # noqa: F401 - boots settings, logging, broker and dependencies
from actors import deps

# Boots exactly like `actors.worker_entry`, then hooks the worker's SQLAlchemy engine, provider
# HTTP client, rate-limit bucket and broker enqueues, and writes running totals (count and
# seconds per statement shape, per commit, per call, per actor message) to BENCH_TRACE_PATH
# once a second. The hooks cost microseconds per statement, so a traced run is
# for finding where time goes, not for headline numbers.
_TRACE_PATH = Path(os.environ.get("BENCH_TRACE_PATH", "bench/results/trace.json"))
_lock = threading.Lock()
_totals: dict[str, list[float]] = {}
_local = threading.local()


def _shape(statement: str) -> str:
    """A statement's identity: its first words, whitespace collapsed."""
    return re.sub(r"\s+", " ", statement).strip()[:90]


def _add(key: str, seconds: float, n: int = 1) -> None:
    with _lock:
        entry = _totals.setdefault(key, [0, 0.0])
        entry[0] += n
        entry[1] += seconds


_engine = deps.current().db


@event.listens_for(_engine, "before_cursor_execute")
def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    _local.started = time.perf_counter()


@event.listens_for(_engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    _add("sql: " + _shape(statement), time.perf_counter() - _local.started)


_do_commit = _engine.dialect.do_commit


def _timed_commit(dbapi_connection: Any) -> None:
    started = time.perf_counter()
    try:
        _do_commit(dbapi_connection)
    finally:
        _add("commit", time.perf_counter() - started)


_engine.dialect.do_commit = _timed_commit  # type: ignore[method-assign]


def _timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(key, time.perf_counter() - started)

    return timed


# Instance attributes shadow the methods, so only this worker's objects are affected.
_http = deps.current().http
_http.send = _timed("http: provider request", _http.send)  # type: ignore[method-assign]
_bucket = deps.current().bucket
_bucket.take = _timed("redis: rate-limit bucket take", _bucket.take)  # type: ignore[method-assign]
_bucket.take_many = _timed(  # type: ignore[method-assign]
    "redis: rate-limit bucket take_many", _bucket.take_many
)
_broker = dramatiq.get_broker()
_broker.enqueue = _timed("broker: enqueue", _broker.enqueue)  # type: ignore[method-assign]


class _ActorTimer(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        _local.message_started = time.perf_counter()

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        _add(f"actor: {message.actor_name}", time.perf_counter() - _local.message_started)
        if message.actor_name in ("process_inbox", "send_messages"):
            _add(f"events: {message.actor_name}", 0.0, len(message.args[0]))


_broker.add_middleware(_ActorTimer())


def _dump_forever() -> None:
    for _ in range(3_600):  # bounded: an hour of one-second dumps
        time.sleep(1)
        with _lock:
            snapshot = {k: {"count": int(v[0]), "seconds": v[1]} for k, v in _totals.items()}
        tmp = _TRACE_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(_TRACE_PATH)


threading.Thread(target=_dump_forever, name="bench-trace", daemon=True).start()
