"""A tenant's automation set-up as stored: chat flows, auto-replies, auto-tag rules, and which
flow each channel runs. Writes for the admin API, and the flow look-ups the pipeline needs."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from pydantic import JsonValue, ValidationError
from sqlalchemy import Connection, text

from engine.automation.flows import ChatFlowDefinition, load_flow
from engine.store.patch import patch_row

log = logging.getLogger(__name__)

CHAT_FLOW_COLUMNS = {"name": "text", "definition": "jsonb", "is_default": "boolean"}
AUTO_REPLY_COLUMNS = {
    "channel_id": "bigint",
    "name": "text",
    "match_kind": "text",
    "pattern": "text",
    "reply": "text",
    "priority": "integer",
    "active_from": "time",
    "active_to": "time",
    "enabled": "boolean",
}
AUTO_TAG_COLUMNS = {
    "tag_id": "bigint",
    "channel_id": "bigint",
    "match_kind": "text",
    "pattern": "text",
    "enabled": "boolean",
}

# -- flows for the pipeline -----------------------------------------------------------------

_FLOW = text("SELECT definition FROM chat_flows WHERE tenant_id = :t AND id = :id")
_DEFAULT_FLOW = text("SELECT id FROM chat_flows WHERE tenant_id = :t AND is_default")


def get_flow(conn: Connection, *, tenant_id: int, flow_id: int) -> ChatFlowDefinition | None:
    """The stored flow; None when deleted, or stored under rules it no longer meets."""
    stored = conn.execute(_FLOW, {"t": tenant_id, "id": flow_id}).scalar_one_or_none()
    if stored is None:
        return None
    try:
        return load_flow(stored)
    except ValidationError:
        log.warning("stored chat flow no longer valid; not run", extra={"chat_flow_id": flow_id})
        return None


def get_default_flow_id(conn: Connection, *, tenant_id: int) -> int | None:
    found = conn.execute(_DEFAULT_FLOW, {"t": tenant_id}).scalar_one_or_none()
    return None if found is None else int(found)


# -- admin writes ---------------------------------------------------------------------------

_CLEAR_DEFAULT = text(
    "UPDATE chat_flows SET is_default = false WHERE tenant_id = :t AND is_default AND id <> :id"
)


def insert_chat_flow(
    conn: Connection, *, tenant_id: int, name: str, definition: JsonValue, is_default: bool
) -> int:
    """A new flow; the tenant's default if `is_default` (the previous default stops being it).

    IntegrityError chat_flows_tenant_id_name_key when the name is taken.
    """
    if is_default:
        conn.execute(_CLEAR_DEFAULT, {"t": tenant_id, "id": 0})
    return int(
        conn.execute(
            text(
                "INSERT INTO chat_flows (tenant_id, name, definition, is_default) "
                "VALUES (:t, :name, CAST(:d AS jsonb), :default) RETURNING id"
            ),
            {"t": tenant_id, "name": name, "d": json.dumps(definition), "default": is_default},
        ).scalar_one()
    )


def update_chat_flow(
    conn: Connection, *, tenant_id: int, flow_id: int, changes: Mapping[str, object]
) -> bool:
    values = dict(changes)
    if "definition" in values:
        values["definition"] = json.dumps(values["definition"])
    if values.get("is_default"):
        conn.execute(_CLEAR_DEFAULT, {"t": tenant_id, "id": flow_id})
    return patch_row(
        conn,
        table="chat_flows",
        tenant_id=tenant_id,
        row_id=flow_id,
        changes=values,
        columns=CHAT_FLOW_COLUMNS,
        touch=True,
    )


def set_channel_flow(
    conn: Connection, *, tenant_id: int, channel_id: int, flow_id: int | None
) -> bool:
    """Run `flow_id` on the channel's new tickets (None: the tenant default); False: no channel."""
    result = conn.execute(
        text(
            "UPDATE channels SET chat_flow_id = :f, updated_at = now() "
            "WHERE tenant_id = :t AND id = :id"
        ),
        {"t": tenant_id, "id": channel_id, "f": flow_id},
    )
    return result.rowcount > 0


def insert_auto_reply(conn: Connection, *, tenant_id: int, values: Mapping[str, object]) -> int:
    """A new auto-reply; IntegrityError auto_replies_tenant_id_name_key when the name is taken."""
    return _insert(conn, "auto_replies", tenant_id, values, AUTO_REPLY_COLUMNS)


def insert_auto_tag_rule(conn: Connection, *, tenant_id: int, values: Mapping[str, object]) -> int:
    """A new rule; IntegrityError auto_tag_rules_tenant_id_tag_id_match_kind_pattern_key when
    the same rule exists."""
    return _insert(conn, "auto_tag_rules", tenant_id, values, AUTO_TAG_COLUMNS)


def _insert(
    conn: Connection,
    table: str,
    tenant_id: int,
    values: Mapping[str, object],
    columns: Mapping[str, str],
) -> int:
    """`table` and `columns` are this module's constants; values are always bound."""
    unknown = set(values) - set(columns)
    if unknown:
        raise ValueError(f"{table}: unknown columns {sorted(unknown)}")
    names = ", ".join(values)
    binds = ", ".join(f"CAST(:v_{n} AS {columns[n]})" for n in values)
    sql = f"INSERT INTO {table} (tenant_id, {names}) VALUES (:t, {binds}) RETURNING id"  # noqa: S608
    params = {f"v_{n}": v for n, v in values.items()}
    return int(conn.execute(text(sql), {"t": tenant_id, **params}).scalar_one())


def update_row(
    conn: Connection, *, table: str, tenant_id: int, row_id: int, changes: Mapping[str, object]
) -> bool:
    """PATCH an auto-reply or auto-tag rule; False when the tenant has no such row."""
    columns = {"auto_replies": AUTO_REPLY_COLUMNS, "auto_tag_rules": AUTO_TAG_COLUMNS}[table]
    return patch_row(
        conn, table=table, tenant_id=tenant_id, row_id=row_id, changes=changes, columns=columns
    )


def delete_row(conn: Connection, *, table: str, tenant_id: int, row_id: int) -> bool:
    """Delete a chat flow, auto-reply or auto-tag rule; False when the tenant has none."""
    if table not in ("chat_flows", "auto_replies", "auto_tag_rules"):
        raise ValueError(f"not an automation table: {table}")
    sql = text(f"DELETE FROM {table} WHERE tenant_id = :t AND id = :id")  # noqa: S608
    return conn.execute(sql, {"t": tenant_id, "id": row_id}).rowcount > 0
