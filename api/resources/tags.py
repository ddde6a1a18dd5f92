"""Tags: the labels contacts carry, and the keywords that apply them to inbound messages."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Clean,
    Color,
    Frozen,
    ListQuery,
    Name,
    NotNull,
    Page,
    Strip,
    changes_of,
    found,
    page_of,
)
from engine.queries.tags import TagView, get_tag, list_tags
from engine.store.tags import delete_tag, insert_tag, update_tag

router = ApiRouter("tags")

Keyword = Annotated[str, Strip, Field(min_length=1, max_length=50), Clean]
Keywords = Annotated[list[Keyword], Field(max_length=50)]
_TAKEN = {"tags_tenant_id_name_key": "A tag with this name already exists."}


class TagListQuery(ListQuery):
    search: Annotated[str, Strip, Field(min_length=1, max_length=100), Clean] | None = None


class TagIn(Frozen):
    name: Name
    color: Color | None = None
    auto_keywords: Keywords = []


class TagPatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    color: Color | None = None
    auto_keywords: Annotated[Keywords | None, NotNull] = None


# Reading tags needs only CONTACTS_READ: every agent tags contacts, so every agent lists tags.
@router.get(
    "/api/v1/tags",
    Permission.CONTACTS_READ,
    query=TagListQuery,
    response=Page[TagView],
    summary="List tags",
)
async def list_tags_endpoint(call: Call[NoBody, TagListQuery]) -> Page[TagView]:
    """The tenant's tags by id; `search` matches part of the name."""
    q = call.query
    async with call.tx() as conn:
        rows = await list_tags(
            conn, call.tenant_id, search=q.search, after_id=q.cursor or 0, limit=q.limit + 1
        )
    return page_of(Page[TagView], rows, q.limit)


@router.get("/api/v1/tags/{id}", Permission.CONTACTS_READ, response=TagView, summary="Get a tag")
async def get_tag_endpoint(call: Call[NoBody, NoQuery]) -> TagView:
    async with call.tx() as conn:
        return found(await get_tag(conn, call.tenant_id, call.id()), "Tag")


@router.post(
    "/api/v1/tags",
    Permission.TAGS_MANAGE,
    body=TagIn,
    response=TagView,
    status=201,
    summary="Create a tag",
)
async def create_tag(call: Call[TagIn, NoQuery]) -> TagView:
    """409 when the tenant already has a tag of that name."""
    b = call.body
    async with call.tx(conflicts=_TAKEN) as conn:
        tag_id = await conn.run_sync(
            lambda c: insert_tag(
                c,
                tenant_id=call.tenant_id,
                name=b.name,
                color=b.color,
                auto_keywords=b.auto_keywords,
            )
        )
        return found(await get_tag(conn, call.tenant_id, tag_id), "Tag")


@router.patch(
    "/api/v1/tags/{id}",
    Permission.TAGS_MANAGE,
    body=TagPatch,
    response=TagView,
    summary="Change a tag",
)
async def update_tag_endpoint(call: Call[TagPatch, NoQuery]) -> TagView:
    """Only the fields sent change; `color: null` clears the colour."""
    changes = changes_of(call.body)
    async with call.tx(conflicts=_TAKEN) as conn:
        updated = await conn.run_sync(
            lambda c: update_tag(c, tenant_id=call.tenant_id, tag_id=call.id(), changes=changes)
        )
        if not updated:
            raise not_found("Tag")
        return found(await get_tag(conn, call.tenant_id, call.id()), "Tag")


@router.delete("/api/v1/tags/{id}", Permission.TAGS_MANAGE, status=204, summary="Delete a tag")
async def delete_tag_endpoint(call: Call[NoBody, NoQuery]) -> None:
    """Contacts carrying the tag lose it."""
    async with call.tx() as conn:
        deleted = await conn.run_sync(
            lambda c: delete_tag(c, tenant_id=call.tenant_id, tag_id=call.id())
        )
    if not deleted:
        raise not_found("Tag")
