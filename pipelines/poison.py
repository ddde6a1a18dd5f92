"""Telling a poisonous batch (bad data the database refuses) from a bad world (retry)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

from engine.errors import EngineError


class PoisonBatchError(EngineError):
    """The database rejected the batch's data itself; retrying it unchanged cannot help."""


@contextmanager
def poison_guard() -> Iterator[None]:
    """Translate data-level database errors into PoisonBatchError; let the rest propagate."""
    try:
        yield
    except (DataError, IntegrityError, ProgrammingError) as exc:
        raise PoisonBatchError(f"{type(exc.orig).__name__}: {str(exc.orig)[:300]}") from exc
