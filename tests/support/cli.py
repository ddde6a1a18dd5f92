"""Running `flowdesk` in-process from a test: its environment, exit code and output, and the
test process's logging given back afterwards (the command line configures its own)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest

from api.cli import main

JWT_SECRET = "a-test-secret-of-enough-length-for-hs256"


class Ran(NamedTuple):
    """One command's exit code and output; unpacks as (code, out, err)."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    *,
    database_url: str,
    redis_url: str | None = None,
    queue_prefix: str | None = None,
    **extra: str,
) -> None:
    """The environment `flowdesk` reads, pointed at the test's services (never RabbitMQ)."""
    monkeypatch.setenv(
        "DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgresql://")
    )
    if redis_url is not None:
        monkeypatch.setenv("REDIS_URI", redis_url)
    if queue_prefix is not None:
        monkeypatch.setenv("QUEUE_PREFIX", queue_prefix)
    monkeypatch.setenv("JWT_SECRET", JWT_SECRET)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AMQP_URL", raising=False)


@contextmanager
def logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def invoke(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> Ran:
    """Run `flowdesk argv…`; its exit code (0 unless it exited otherwise) and output."""
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)
