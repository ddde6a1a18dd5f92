"""Partial updates: set exactly the columns a request named, in one statement."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text


def patch_row(
    conn: Connection,
    *,
    table: str,
    tenant_id: int,
    row_id: int,
    changes: Mapping[str, object],
    columns: Mapping[str, str],
    touch: bool = False,
) -> bool:
    """Set `changes` on the tenant's row `row_id` of `table`; False when there is no such row.

    `table` and `columns` (name → SQL type to cast the bound value to) are the caller's
    constants, never request input: only they are spliced, values are always bound. One
    UPDATE, so two concurrent patches of different fields never undo each other. `touch`
    also sets updated_at.
    """
    unknown = set(changes) - set(columns)
    if unknown:
        raise ValueError(f"{table}: not patchable: {sorted(unknown)}")
    sets = [f"{name} = CAST(:v_{name} AS {columns[name]})" for name in changes]
    if touch:
        sets.append("updated_at = now()")
    if not sets:  # nothing to change: still say whether the row exists
        sets.append("id = id")
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE tenant_id = :t AND id = :id"  # noqa: S608
    params = {f"v_{name}": value for name, value in changes.items()}
    result = conn.execute(text(sql), {"t": tenant_id, "id": row_id, **params})
    return result.rowcount > 0
