"""What the campaign commands share: option names in errors, lookups, progress lines."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from api.cli import CliError
from api.errors import ApiError
from engine.campaigns import (
    CampaignError,
    CampaignInputError,
    CampaignStateError,
)
from engine.db import system_tx, tenant_tx
from engine.errors import NotFoundError
from engine.store import campaigns as store

# Request fields as the options that set them, so an error names what the user typed.
_FLAGS = {
    "name": "--name",
    "channel_id": "--channel",
    "audience": "--tag/--contact/--import",
    "variants": "--message",
    "start_at": "--start",
    "end_at": "--end",
    "send_window": "--window/--days",
    "time_zone": "--time-zone",
    "delay_ms": "--delay",
    "rate_per_min": "--rate",
}
_DELAY = re.compile(r"^(\d+)(ms|s|m)$")
BAR_WIDTH = 30


def delay_ms(value: str) -> int:
    match = _DELAY.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a delay like 500ms, 5s or 2m")
    return int(match[1]) * {"ms": 1, "s": 1000, "m": 60_000}[match[2]]


def cli_db(settings: Any) -> Engine:
    """The command line's database engine, after its schema check."""
    from api.cli import _db

    db: Engine = _db(settings)
    return db


def tenant_of(db: Engine, campaign_id: int) -> int:
    with system_tx(db) as conn:
        tenant_id = store.get_campaign_tenant(conn, campaign_id)
    if tenant_id is None:
        raise CliError(f"no campaign {campaign_id}")
    return tenant_id


def flag_of(field: str) -> str:
    head, _, rest = field.partition(".")
    if head == "variants" and rest[:1].isdigit():
        return f"--message {int(rest.split('.')[0]) + 1}"
    return _FLAGS.get(head, field)


@contextmanager
def as_cli_errors() -> Iterator[None]:
    """Validation and domain errors as one line naming the option at fault (exit code 2)."""
    try:
        yield
    except ValidationError as exc:
        parts = [
            f"{flag_of('.'.join(map(str, e['loc'])))}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise CliError("; ".join(parts)) from None
    except ApiError as exc:
        parts = [f"{flag_of(d.field)}: {d.message}" for d in exc.details]
        raise CliError("; ".join(parts) or exc.message) from None
    except store.ChannelDisconnectedError:
        raise CliError("channel disconnected: reconnect the campaign's channel first") from None
    except (CampaignInputError, CampaignStateError) as exc:
        raise CliError(f"{flag_of(exc.field)}: {exc}") from None
    except (CampaignError, NotFoundError) as exc:
        raise CliError(str(exc)) from None


# progress -----------------------------------------------------------------------------------


def counts_of(counts: dict[str, int]) -> dict[str, int]:
    known = {k: int(counts.get(k, 0)) for k in store.COUNT_KEYS}
    return {**known, "total": sum(known.values())}


def progress_bar(counts: dict[str, int]) -> str:
    """`[######------]  50%  pending 10 · sent 4 · …`: the bar fills as contacts leave pending."""
    c = counts_of(counts)
    done = c["total"] - c["pending"]
    share = done / c["total"] if c["total"] else 0.0
    filled = round(share * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    parts = " · ".join(f"{k} {c[k]}" for k in store.COUNT_KEYS)
    return f"[{bar}] {share:>4.0%}  {parts}"


def summary(c: store.Campaign) -> dict[str, object]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status.value,
        "channel_id": c.channel_id,
        "counts": counts_of(c.counts),
        "start_at": c.start_at,
        "end_at": c.end_at,
        "failure_reason": c.failure_reason,
    }


def status_line(c: store.Campaign) -> str:
    why = f" ({c.failure_reason})" if c.failure_reason else ""
    return f"campaign {c.id} {c.status.value:<9}{why} {progress_bar(c.counts)}"


def read_campaign(db: Engine, tenant_id: int, campaign_id: int) -> store.Campaign:
    with tenant_tx(db, tenant_id) as conn:
        found = store.get_campaign(conn, tenant_id=tenant_id, campaign_id=campaign_id)
    if found is None:
        raise CliError(f"no campaign {campaign_id}")
    return found
