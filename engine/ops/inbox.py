"""Inbox health: webhooks stored but not yet processed, and events the pipeline set aside."""

from __future__ import annotations

from sqlalchemy import Connection, text

from engine.ops.models import IgnoredEvent, InboxStatus

RECENT_IGNORED = 50

_PENDING = text(
    "SELECT count(*), extract(epoch FROM now() - min(received_at)) "
    "FROM inbox WHERE status = 'pending'"
)
_DEAD = text("SELECT count(*) FROM inbox WHERE status = 'dead'")
_IGNORED = text(
    "SELECT id, tenant_id, channel_id, status, received_at, note FROM inbox "
    "WHERE status IN ('ignored', 'dead') ORDER BY id DESC LIMIT :limit"
)


def inbox_status(conn: Connection, *, recent: int = RECENT_IGNORED) -> InboxStatus:
    """Counts across tenants (system scope); the reasons are the pipeline's notes, never bodies."""
    pending, oldest_s = conn.execute(_PENDING).one()
    dead = conn.execute(_DEAD).scalar_one()
    rows = conn.execute(_IGNORED, {"limit": recent}).all()
    return InboxStatus(
        unprocessed=int(pending),
        oldest_unprocessed_age_s=None if oldest_s is None else max(float(oldest_s), 0.0),
        dead=int(dead),
        recent_ignored=tuple(
            IgnoredEvent(
                id=r[0], tenant_id=r[1], channel_id=r[2], status=r[3], received_at=r[4], reason=r[5]
            )
            for r in rows
        ),
    )
