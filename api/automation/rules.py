"""Auto-replies and auto-tag rules: keyword or regex triggers on inbound messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from api.errors import invalid_field
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import (
    Clean,
    Frozen,
    ListQuery,
    Name,
    NotNull,
    Page,
    RowId,
    changes_of,
    found,
    page_of,
)
from engine.automation.catalog import (
    delete_row,
    insert_auto_reply,
    insert_auto_tag_rule,
    update_row,
)
from engine.automation.flows import MAX_PATTERN_CHARS
from engine.automation.templates import validate_template
from engine.queries.automation import (
    AutoReplyView,
    AutoTagRuleView,
    get_known_ids,
    get_row,
    list_rows,
)

auto_replies = ApiRouter("auto_replies")
auto_tags = ApiRouter("auto_tags")

MatchKind = Literal["keyword", "regex"]
Pattern = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS), Clean]
Reply = Annotated[
    str, Field(min_length=1, max_length=4096), Clean, AfterValidator(validate_template)
]
Priority = Annotated[int, Field(ge=-1000, le=1000)]
_REPLY_TAKEN = {"auto_replies_tenant_id_name_key": "An auto-reply with this name already exists."}
_RULE_TAKEN = {
    "auto_tag_rules_tenant_id_tag_id_match_kind_pattern_key": "This auto-tag rule already exists."
}


def _check_pattern(match_kind: str | None, pattern: str | None) -> None:
    if match_kind == "regex" and pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern: not a valid regular expression: {exc}") from None


class AutoReplyIn(Frozen):
    """Answers an inbound message matching `pattern` (a whole word or phrase for `keyword`),
    on `channel_id` or every channel, between `active_from` and `active_to` on the tenant's
    clock (a window may span midnight). The highest `priority` match wins; never while a bot
    handles the ticket."""

    name: Name
    channel_id: RowId | None = None
    match_kind: MatchKind = "keyword"
    pattern: Pattern
    reply: Reply
    priority: Priority = 0
    active_from: time | None = None
    active_to: time | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> AutoReplyIn:
        _check_pattern(self.match_kind, self.pattern)
        if (self.active_from is None) != (self.active_to is None):
            raise ValueError("give both active_from and active_to, or neither")
        return self


class AutoReplyPatch(Frozen):
    name: Annotated[Name | None, NotNull] = None
    channel_id: RowId | None = None
    match_kind: Annotated[MatchKind | None, NotNull] = None
    pattern: Annotated[Pattern | None, NotNull] = None
    reply: Annotated[Reply | None, NotNull] = None
    priority: Annotated[Priority | None, NotNull] = None
    active_from: time | None = None
    active_to: time | None = None
    enabled: Annotated[bool | None, NotNull] = None

    @model_validator(mode="after")
    def _consistent(self) -> AutoReplyPatch:
        _check_pattern(self.match_kind or "regex", self.pattern)
        if ("active_from" in self.model_fields_set) != ("active_to" in self.model_fields_set):
            raise ValueError("change active_from and active_to together")
        return self


class AutoTagRuleIn(Frozen):
    """Gives the contact `tag_id` when an inbound message matches `pattern`."""

    tag_id: RowId
    channel_id: RowId | None = None
    match_kind: MatchKind = "keyword"
    pattern: Pattern
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> AutoTagRuleIn:
        _check_pattern(self.match_kind, self.pattern)
        return self


class AutoTagRulePatch(Frozen):
    tag_id: Annotated[RowId | None, NotNull] = None
    channel_id: RowId | None = None
    match_kind: Annotated[MatchKind | None, NotNull] = None
    pattern: Annotated[Pattern | None, NotNull] = None
    enabled: Annotated[bool | None, NotNull] = None

    @model_validator(mode="after")
    def _consistent(self) -> AutoTagRulePatch:
        _check_pattern(self.match_kind or "regex", self.pattern)
        return self


async def _check_ids(call: Call[Any, Any], conn: Any, values: Mapping[str, object]) -> None:
    """422 for a channel or tag that is not this tenant's (a foreign key alone would accept
    another tenant's id)."""
    for field, table in (("channel_id", "channels"), ("tag_id", "tags")):
        value = values.get(field)
        if isinstance(value, int) and not await get_known_ids(conn, table, call.tenant_id, [value]):
            raise invalid_field(field, f"no {table[:-1]} {value} in this tenant")


def _crud(
    router: ApiRouter,
    path: str,
    *,
    table: str,
    view: type[AutoReplyView] | type[AutoTagRuleView],
    body: type[Frozen],
    patch: type[Frozen],
    subject: str,
    plural: str,
    taken: dict[str, str],
) -> None:
    """List, get, create, change and delete for one rules table."""
    insert = insert_auto_reply if table == "auto_replies" else insert_auto_tag_rule
    title = subject.capitalize()
    page: Any = Page[view]  # type: ignore[valid-type]

    async def list_(call: Call[NoBody, ListQuery]) -> Page[Any]:
        q = call.query
        async with call.tx() as conn:
            rows = await list_rows(
                conn, view, call.tenant_id, after_id=q.cursor or 0, limit=q.limit + 1
            )
        return page_of(page, rows, q.limit)

    async def get(call: Call[NoBody, NoQuery]) -> Any:
        async with call.tx() as conn:
            return found(await get_row(conn, view, call.tenant_id, call.id()), title)

    async def create(call: Call[Any, NoQuery]) -> Any:
        values = call.body.model_dump()
        async with call.tx(conflicts=taken) as conn:
            await _check_ids(call, conn, values)
            row_id = await conn.run_sync(
                lambda c: insert(c, tenant_id=call.tenant_id, values=values)
            )
            return found(await get_row(conn, view, call.tenant_id, row_id), title)

    async def change(call: Call[Any, NoQuery]) -> Any:
        changes = changes_of(call.body)
        async with call.tx(conflicts=taken) as conn:
            await _check_ids(call, conn, changes)
            updated = await conn.run_sync(
                lambda c: update_row(
                    c, table=table, tenant_id=call.tenant_id, row_id=call.id(), changes=changes
                )
            )
            if not updated:
                raise not_found(title)
            return found(await get_row(conn, view, call.tenant_id, call.id()), title)

    async def delete(call: Call[NoBody, NoQuery]) -> None:
        async with call.tx() as conn:
            deleted = await conn.run_sync(
                lambda c: delete_row(c, table=table, tenant_id=call.tenant_id, row_id=call.id())
            )
        if not deleted:
            raise not_found(title)

    one = f"{path}/{{id}}"
    endpoints: list[tuple[str, str, Any, str, dict[str, Any]]] = [
        ("GET", path, list_, f"List {plural}", {"query": ListQuery, "response": page}),
        ("GET", one, get, f"Get an {subject}", {"response": view}),
        (
            "POST",
            path,
            create,
            f"Create an {subject}",
            {"body": body, "response": view, "status": 201},
        ),
        ("PATCH", one, change, f"Change an {subject}", {"body": patch, "response": view}),
        ("DELETE", one, delete, f"Delete an {subject}", {"status": 204}),
    ]
    for method, url, handler, summary, options in endpoints:
        handler.__name__ = f"{handler.__name__.rstrip('_')}_{table}"
        if method == "POST":
            handler.__doc__ = body.__doc__
        router.route(method, url, Permission.AUTOMATION_MANAGE, summary=summary, **options)(handler)


_crud(
    auto_replies,
    "/api/v1/auto-replies",
    table="auto_replies",
    view=AutoReplyView,
    body=AutoReplyIn,
    patch=AutoReplyPatch,
    subject="auto-reply",
    plural="auto-replies",
    taken=_REPLY_TAKEN,
)
_crud(
    auto_tags,
    "/api/v1/auto-tag-rules",
    table="auto_tag_rules",
    view=AutoTagRuleView,
    body=AutoTagRuleIn,
    patch=AutoTagRulePatch,
    subject="auto-tag rule",
    plural="auto-tag rules",
    taken=_RULE_TAKEN,
)
