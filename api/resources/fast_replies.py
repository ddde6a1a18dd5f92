"""Fast replies: canned answers (text and media by URL) an agent inserts by shortcut."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Clean,
    Frozen,
    ListQuery,
    NotNull,
    Page,
    Strip,
    changes_of,
    found,
    page_of,
)
from engine.automation.templates import validate_template
from engine.queries.fast_replies import (
    FastReplyView,
    MediaKind,
    get_fast_reply,
    list_fast_replies,
)
from engine.store.fast_replies import delete_fast_reply, insert_fast_reply, update_fast_reply

router = ApiRouter("fast_replies")

MAX_BODY_CHARS = 4096
_TAKEN = {"fast_replies_tenant_id_shortcut_key": "A fast reply with this shortcut already exists."}


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value


# Shortcuts are typed after a "/" in the composer: one word, no spaces.
Shortcut = Annotated[str, Strip, Field(min_length=1, max_length=50, pattern=r"^\S+$"), Clean]
# Variables ({{first_name}}, {{protocol}}…) are filled when the agent sends; an unknown one is
# refused here rather than sent as blank text.
Body = Annotated[
    str, Field(min_length=1, max_length=MAX_BODY_CHARS), Clean, AfterValidator(validate_template)
]
Url = Annotated[str, Field(max_length=2048), Clean, AfterValidator(_http_url)]


class MediaIn(Frozen):
    url: Url
    type: MediaKind


MediaList = Annotated[list[MediaIn], Field(max_length=10)]


class FastReplyListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None


class FastReplyIn(Frozen):
    shortcut: Shortcut
    body: Body
    media: MediaList = []


class FastReplyPatch(Frozen):
    shortcut: Annotated[Shortcut | None, NotNull] = None
    body: Annotated[Body | None, NotNull] = None
    media: Annotated[MediaList | None, NotNull] = None


@router.get(
    "/api/v1/fast-replies",
    Permission.FAST_REPLIES_READ,
    query=FastReplyListQuery,
    response=Page[FastReplyView],
    summary="List fast replies",
)
async def list_fast_replies_endpoint(
    call: Call[NoBody, FastReplyListQuery],
) -> Page[FastReplyView]:
    """By id; `search` matches part of the shortcut or the body."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_fast_replies(
            conn, call.tenant_id, search=q.search, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[FastReplyView], rows, q.limit)


@router.get(
    "/api/v1/fast-replies/{id}",
    Permission.FAST_REPLIES_READ,
    response=FastReplyView,
    summary="Get a fast reply",
)
async def get_fast_reply_endpoint(call: Call[NoBody, NoQuery]) -> FastReplyView:
    async with call.tx() as conn:
        return found(await get_fast_reply(conn, call.tenant_id, call.id()), "Fast reply")


@router.post(
    "/api/v1/fast-replies",
    Permission.FAST_REPLIES_MANAGE,
    body=FastReplyIn,
    response=FastReplyView,
    status=201,
    summary="Create a fast reply",
)
async def create_fast_reply(call: Call[FastReplyIn, NoQuery]) -> FastReplyView:
    """409 when the shortcut is taken in this tenant."""
    b = call.body
    media = [m.model_dump() for m in b.media]
    async with call.tx(conflicts=_TAKEN) as conn:
        reply_id = await conn.run_sync(
            lambda c: insert_fast_reply(
                c, tenant_id=call.tenant_id, shortcut=b.shortcut, body=b.body, media=media
            )
        )
        return found(await get_fast_reply(conn, call.tenant_id, reply_id), "Fast reply")


@router.patch(
    "/api/v1/fast-replies/{id}",
    Permission.FAST_REPLIES_MANAGE,
    body=FastReplyPatch,
    response=FastReplyView,
    summary="Change a fast reply",
)
async def update_fast_reply_endpoint(call: Call[FastReplyPatch, NoQuery]) -> FastReplyView:
    changes = changes_of(call.body)
    async with call.tx(conflicts=_TAKEN) as conn:
        updated = await conn.run_sync(
            lambda c: update_fast_reply(
                c, tenant_id=call.tenant_id, reply_id=call.id(), changes=changes
            )
        )
        if not updated:
            raise not_found("Fast reply")
        return found(await get_fast_reply(conn, call.tenant_id, call.id()), "Fast reply")


@router.delete(
    "/api/v1/fast-replies/{id}",
    Permission.FAST_REPLIES_MANAGE,
    status=204,
    summary="Delete a fast reply",
)
async def delete_fast_reply_endpoint(call: Call[NoBody, NoQuery]) -> None:
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: delete_fast_reply(c, tenant_id=call.tenant_id, reply_id=call.id())
        )
    if not deleted:
        raise not_found("Fast reply")
