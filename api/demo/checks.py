"""A self-check of the demo: what should be, what was found, and whether they agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    what: str
    expected: int
    found: int
    ok: bool


def check(what: str, expected: int, found: int) -> Check:
    return Check(what, expected, found, expected == found)
