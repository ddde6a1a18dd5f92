"""`flowdesk queues` and `flowdesk dlq …`: the ops API's views and actions from a terminal.

Filters and queries are the ones the API uses (engine/ops, engine/store/dead_letters.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from api.cli import CliError, Output, duration, positive_int
from config import Settings
from engine.ops.models import QueuesOverview
from engine.queries.common import Instant
from engine.store.dead_letters import DeadLetter, DeadLetterFilter

Add = Callable[..., Any]
WATCH_EVERY_S = 2.0
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def moment(value: str) -> datetime:
    """An ISO 8601 time (UTC when no offset is given) or a duration ago: 2h, 30m, 7d."""
    try:
        return datetime.now(UTC) - duration(value)
    except argparse.ArgumentTypeError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time like 2026-05-01T12:00:00+00:00 or a duration like 2h"
        ) from None
    try:
        return _INSTANT.validate_python(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{value!r} is not between 1970 and 9998") from None


def cmd_queues(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    read = _queue_reader(settings)
    if not args.watch:
        overview = read()
        out.emit(json.loads(overview.model_dump_json()), queues_table(overview))
        return
    try:
        while True:
            overview = read()
            if out.as_json:
                print(overview.model_dump_json(), flush=True)
            else:
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                print(f"\033[H\033[J{queues_table(overview)}\n\nupdated {stamp} UTC · Ctrl-C stops")
            time.sleep(WATCH_EVERY_S)
    except KeyboardInterrupt:
        return


def _queue_reader(settings: Settings) -> Callable[[], QueuesOverview]:
    import redis.asyncio as aioredis

    from actors import scheduler, wiring  # noqa: F401 - importing declares every actor
    from api.cli import _check_schema, _runtime
    from api.ops_service import bound_queues, broker_ref
    from engine.db import create_async_db_engine, create_db_engine
    from engine.ops.queues import read_queues

    runtime = _runtime(settings)
    sync_db = create_db_engine(runtime.database_url, pool_size=1)
    try:
        _check_schema(sync_db)
    finally:
        sync_db.dispose()

    async def once() -> QueuesOverview:
        db = create_async_db_engine(runtime.database_url, pool_size=1)
        client = aioredis.from_url(runtime.redis_url)
        try:
            ref = broker_ref(settings)
            return await read_queues(client, db, ref, bound_queues(settings))
        finally:
            await client.aclose()
            await db.dispose()

    return lambda: asyncio.run(once())


def queues_table(overview: QueuesOverview) -> str:
    head = ("QUEUE", "READY", "DELAYED", "IN-FLIGHT", "DEAD", "OLDEST", "DONE/MIN", "FAIL/MIN")
    from api.ops_service import age_text

    rows = [
        (
            q.name,
            str(q.ready),
            str(q.delayed),
            "?" if q.in_flight is None else str(q.in_flight),
            str(q.dead),
            age_text(q.oldest_age_s),
            str(q.processed_per_min),
            str(q.failed_per_min),
        )
        for q in overview.queues
    ]
    width = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, width, strict=True))
        )
        for r in (head, *rows)
    ]
    lines += [f"note: {n}" for n in overview.notes]
    return f"broker: {overview.broker}\n" + "\n".join(lines)


def cmd_dlq(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from api.cli import _db
    from engine.db import system_tx
    from engine.ops.dead_letters import dead_letter_page
    from engine.store import dead_letters as store

    db = _db(settings)
    selector = _selector(args)
    if args.dlq_command == "list":
        with system_tx(db) as conn:
            found = dead_letter_page(conn, selector, limit=args.limit, cursor=args.cursor)
        lines = [
            f"{d.id:>6}  {d.created_at:%Y-%m-%d %H:%M:%S}  {d.queue:<12} {d.actor:<18} "
            f"{d.error_class:<24} x{d.attempts}  {d.error_message[:60]}"
            for d in found.items
        ]
        if found.next_cursor is not None:
            lines.append(f"more: --cursor {found.next_cursor}")
        out.emit([_dl_json(d) for d in found.items], "\n".join(lines) or "no dead letters")
    elif args.dlq_command == "show":
        with system_tx(db) as conn:
            d = store.get_dead_letter(conn, args.dead_letter_id)
        if d is None:
            raise CliError(f"no dead letter {args.dead_letter_id}")
        data = _dl_json(d) | {"payload": store.payload_of(d), "traceback": d.traceback}
        out.emit(data, "\n".join(f"{k}: {v}" for k, v in data.items()))
    else:
        if selector.is_empty and not args.all:
            raise CliError("say which dead letters: --id, a filter, or --all")
        if args.dlq_command == "requeue":
            from actors.dead_letters import requeue
            from api.cli import _broker

            done = requeue(db, _broker(settings), selector)
            out.emit({"requeued": [d.id for d in done]}, f"requeued {len(done)} dead letter(s)")
        else:
            with system_tx(db) as conn:
                count = store.purge_dead_letters(conn, selector)
            out.emit({"purged": count}, f"purged {count} dead letter(s)")


def _selector(args: argparse.Namespace) -> DeadLetterFilter:
    if args.since and args.until and args.since >= args.until:
        raise CliError("--until must be later than --since")
    return DeadLetterFilter(
        ids=tuple(getattr(args, "id", None) or ()),
        queue=args.queue,
        actor=args.actor,
        error_class=args.error_class,
        tenant_id=args.tenant,
        older_than=args.older_than,
        newer_than=args.newer_than,
        since=args.since,
        until=args.until,
        include_requeued=getattr(args, "include_requeued", False),
    )


def _dl_json(d: DeadLetter) -> dict[str, object]:
    return d.model_dump(exclude={"payload_json", "traceback", "message_id"})


def add_ops_commands(sub: Any, add: Add) -> None:
    """`flowdesk queues` and `flowdesk dlq …`; `add` is cli.py's helper."""
    p = add("queues", cmd_queues, "queue depths, dead letters and throughput per queue")
    p.add_argument("--watch", action="store_true", help="refresh every 2 s until Ctrl-C")
    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(
        dest="dlq_command", required=True
    )
    for name, help in (
        ("list", "list dead letters, newest first"),
        ("requeue", "requeue dead letters"),
        ("purge", "delete dead letters"),
    ):
        p = add(name, cmd_dlq, help, dlq)
        p.add_argument("--queue")
        p.add_argument("--actor")
        p.add_argument("--error-class")
        p.add_argument("--tenant", type=positive_int)
        p.add_argument("--older-than", type=duration)
        p.add_argument("--newer-than", type=duration)
        p.add_argument("--since", type=moment, help="ISO time or duration ago (2h)")
        p.add_argument("--until", type=moment, help="ISO time or duration ago (30m)")
        if name == "list":
            p.add_argument("--limit", type=positive_int, default=50)
            p.add_argument("--cursor", type=positive_int, help="continue from a previous page")
            p.add_argument("--include-requeued", action="store_true")
        else:
            p.add_argument("--id", type=positive_int, action="append")
            p.add_argument("--all", action="store_true")
    p = add("show", cmd_dlq, "show one dead letter", dlq)
    p.add_argument("dead_letter_id", type=positive_int)
    for q in ("queue", "actor", "error_class", "tenant", "older_than", "newer_than"):
        p.set_defaults(**{q: None})
    p.set_defaults(since=None, until=None)
