"""The drills' table: one row per drill and broker, zeros promised for lost and duplicated."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

COLUMNS = (
    ("drill", 17),
    ("broker", 8),
    ("faults", 6),
    ("sent", 7),
    ("accepted", 8),
    ("applied", 7),
    ("lost", 5),
    ("duplicated", 10),
    ("recovery s", 10),
)


@dataclass(frozen=True)
class Row:
    drill: str
    broker: str
    sent: int
    accepted: int  # answered 2xx (inbound) / sends requested (outbound)
    applied: int  # distinct effects found in the database / sends in a final state
    lost: int
    duplicated: int
    recovery_s: float  # the slowest recovery after a fault
    faults: int
    notes: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and math.isfinite(self.recovery_s)


def render(rows: Sequence[Row]) -> str:
    head = "  ".join(f"{name:>{width}}" for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        recovery = f"{r.recovery_s:.1f}" if math.isfinite(r.recovery_s) else "never"
        values = (
            r.drill, r.broker, r.faults, r.sent, r.accepted, r.applied, r.lost, r.duplicated,
            recovery,
        )  # fmt: skip
        lines.append("  ".join(f"{v:>{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True)))
        lines += [f"    ! {note}" for note in r.notes]
    verdict = "PASS" if rows and all(r.clean for r in rows) else "FAIL"
    lines.append(f"{verdict}: {sum(r.lost for r in rows)} lost, "
                 f"{sum(r.duplicated for r in rows)} duplicated")  # fmt: skip
    return "\n".join(lines)
