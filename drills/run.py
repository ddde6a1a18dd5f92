"""`python -m drills.run [--only NAME] [--events N] [--broker redis|rabbitmq|both]`: every drill
against a private PostgreSQL and Redis (and the local RabbitMQ, under a queue prefix of its own),
then the table. Exits 1 when anything was lost or duplicated."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from functools import partial

from drills.inbound import DRILLS, run_inbound
from drills.outbound import OUTBOUND_SUMMARY, SENDS_PER_EVENT, run_outbound
from drills.report import Row, render
from drills.stack import Broker

DEFAULT_EVENTS = 5_000
NAMES = (*DRILLS, "outbound-burst")


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number (got {value!r})")
    return int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m drills.run", description=__doc__)
    summaries = [f"{d.name} ({d.summary})" for d in DRILLS.values()]
    summaries.append(f"outbound-burst ({OUTBOUND_SUMMARY})")
    parser.add_argument(
        "--only",
        choices=NAMES,
        action="append",
        help="run only these: " + ", ".join(summaries).replace("%", "%%"),
    )
    parser.add_argument(
        "--events", type=positive_int, default=DEFAULT_EVENTS, help="webhooks per inbound drill"
    )
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    return parser.parse_args(argv)


def plan(names: list[str], brokers: list[Broker], events: int) -> list[Callable[[], Row]]:
    runs: list[Callable[[], Row]] = []
    for broker in brokers:
        for name in names:
            if name == "outbound-burst":
                sends = max(1, events // SENDS_PER_EVENT)
                runs.append(partial(run_outbound, broker, sends=sends))
            else:
                runs.append(partial(run_inbound, DRILLS[name], broker, events=events))
    return runs


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so every drill's servers and processes are still stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    brokers: list[Broker] = ["redis", "rabbitmq"] if args.broker == "both" else [args.broker]
    rows: list[Row] = []
    for run in plan(args.only or list(NAMES), brokers, args.events):
        started = time.monotonic()
        row = run()
        rows.append(row)
        print(
            f"{row.drill} on {row.broker}: {row.lost} lost, {row.duplicated} duplicated "
            f"({time.monotonic() - started:.0f}s)",
            flush=True,
        )
    print(render(rows))
    return 0 if all(r.clean for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
