"""Console pages: queues, dead letters (list, detail, requeue, purge), inbox and scheduler."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import ops_service as ops
from api.console.rendering import page, redirect
from api.console.session import guarded, read_form
from api.errors import ApiError
from api.ops_access import Operator
from api.ops_service import Selection
from engine.store.dead_letters import payload_of

FILTER_FIELDS = ("queue", "actor", "error_class", "tenant_id", "since", "until")
PAGE_SIZE = 50
_CURSOR = re.compile(r"[1-9][0-9]{0,17}")  # a dead letter's id: ASCII digits, a bigint


async def queues_page(request: Request, operator: Operator) -> Response:
    deps = ops.ops_deps(request)
    return page(
        request,
        "queues.html",
        operator,
        section="queues",
        overview=await ops.queues(deps),
        workers=await ops.workers(deps),
    )


def _selection(values: Mapping[str, str]) -> tuple[Selection, tuple[str, ...]]:
    """A filter from form fields; blank fields are ignored, bad ones named in the errors."""
    data: dict[str, object] = {}
    for name in FILTER_FIELDS:
        value = values.get(name, "").strip()
        if value:
            data[name] = _as_utc(value) if name in ("since", "until") else value
    try:
        return Selection.model_validate(data), ()
    except ValidationError as exc:
        errors = tuple(
            f"{'.'.join(str(p) for p in e['loc']) or 'filter'}: {e['msg']}" for e in exc.errors()
        )
        return Selection(), errors


def _as_utc(value: str) -> str:
    """A datetime-local field has no zone; the console works in UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # left for validation to name
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _filter_query(values: Mapping[str, str]) -> str:
    return urlencode({k: values[k] for k in FILTER_FIELDS if values.get(k, "").strip()})


async def dead_letters_page(request: Request, operator: Operator) -> Response:
    params = dict(request.query_params)
    selection, errors = _selection(params)
    cursor_text = params.get("cursor", "")
    cursor = int(cursor_text) if _CURSOR.fullmatch(cursor_text) else None
    deps = ops.ops_deps(request)
    found = await ops.page(deps, selection.to_filter(), limit=PAGE_SIZE, cursor=cursor)
    live_total = await ops.live_dead_letters(deps)
    return page(
        request,
        "dead_letters.html",
        operator,
        section="dead-letters",
        status=400 if errors else 200,
        errors=errors,
        found=found,
        values={k: params.get(k, "") for k in FILTER_FIELDS},
        query=_filter_query(params),
        live_total=live_total,
        filtered=not selection.to_filter().is_empty,
    )


async def dead_letter_page(request: Request, operator: Operator) -> Response:
    try:
        d = await ops.one(ops.ops_deps(request), int(request.path_params["id"]))
    except ApiError:
        return page(request, "error.html", operator, status=404, errors=("No such dead letter.",))
    return page(
        request,
        "dead_letter.html",
        operator,
        section="dead-letters",
        d=d,
        payload=payload_of(d),
    )


async def requeue_one(request: Request, operator: Operator) -> Response:
    dead_letter_id = int(request.path_params["id"])
    try:
        await ops.requeue_one(ops.ops_deps(request), dead_letter_id, who=operator.name)
    except ApiError as exc:
        if exc.status == 404:
            return redirect("/ops/console/dead-letters")
        return redirect(f"/ops/console/dead-letters/{dead_letter_id}?notice=already")
    return redirect(f"/ops/console/dead-letters/{dead_letter_id}?notice=requeued&n=1")


async def bulk(request: Request, operator: Operator) -> Response:
    """Requeue or purge every dead letter the posted filter matches (`all` when unfiltered)."""
    form = await read_form(request)
    action = form.get("action", "")
    selection, errors = _selection(form)
    back = "/ops/console/dead-letters"
    query = _filter_query(form)
    f = selection.to_filter()
    if action not in ("requeue", "purge"):
        errors += ("action: choose requeue or purge",)
    elif f.is_empty and form.get("all") != "yes":
        errors += ("all: tick 'every dead letter' to act without a filter",)
    if errors:
        return page(request, "error.html", operator, status=400, errors=errors)
    deps = ops.ops_deps(request)
    if action == "requeue":
        n = len(await ops.requeue(deps, f, who=operator.name))
    else:
        n = await ops.purge(deps, f, who=operator.name)
    notice = urlencode({"notice": "requeued" if action == "requeue" else "purged", "n": n})
    return redirect(f"{back}?{query}&{notice}" if query else f"{back}?{notice}")


async def inbox_page(request: Request, operator: Operator) -> Response:
    deps = ops.ops_deps(request)
    return page(
        request,
        "inbox.html",
        operator,
        section="inbox",
        inbox=await ops.inbox(deps),
        scheduler=await ops.scheduler(deps),
    )


routes = [
    Route("/ops/console", guarded(queues_page), methods=["GET"]),
    Route("/ops/console/dead-letters", guarded(dead_letters_page), methods=["GET"]),
    Route("/ops/console/dead-letters/bulk", guarded(bulk), methods=["POST"]),
    Route("/ops/console/dead-letters/{id:int}", guarded(dead_letter_page), methods=["GET"]),
    Route("/ops/console/dead-letters/{id:int}/requeue", guarded(requeue_one), methods=["POST"]),
    Route("/ops/console/inbox", guarded(inbox_page), methods=["GET"]),
]
