"""Edits and deletions of messages the provider already has: requested, carried out, settled.

An agent's request locks the message, checks that the provider holds it and the channel can
change it, and records a `pending` change; a worker then asks the provider and settles the
change `done` (the message's body or deletion recorded) or `failed` (with the provider's
reason). The message itself only changes once the provider has agreed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

from sqlalchemy import Connection, RowMapping, text
from sqlalchemy.exc import IntegrityError

from engine.errors import NotFoundError
from engine.events import ChannelType, Frozen
from engine.store.outbox import insert_outbox
from engine.store.scheduled_messages import MessageStateError

ChangeKind = Literal["edit", "delete"]
# Which channel types can make which change; the API asks before recording one.
Supports = Callable[[ChannelType, ChangeKind], bool]
_PROVIDER_HOLDS = ("sent", "delivered", "read")


class RequestedChange(Frozen):
    change_id: int
    message_id: int
    ticket_id: int
    outbox_ids: tuple[int, ...]


class ChangeJob(Frozen):
    """A pending change with what the worker needs to carry it out."""

    id: int
    tenant_id: int
    message_id: int
    ticket_id: int
    channel_id: int
    kind: ChangeKind
    body: str | None
    message_type: str
    provider_message_id: str
    attempts: int


_LOCK_MESSAGE = text(
    """
    SELECT m.id, m.ticket_id, m.direction, m.type, m.status, m.provider_message_id,
           m.deleted_at IS NOT NULL AS deleted, c.type AS channel_type
    FROM messages m JOIN channels c ON c.id = m.channel_id
    WHERE m.tenant_id = :t AND m.id = :id
    FOR UPDATE OF m
    """
)
_INSERT = text(
    """
    INSERT INTO message_changes (tenant_id, message_id, kind, body, requested_by)
    VALUES (:t, :message_id, :kind, :body, :user_id)
    RETURNING id
    """
)
_EVENT = text(
    """
    INSERT INTO ticket_events (tenant_id, ticket_id, type, user_id, data)
    VALUES (:t, :ticket_id, :type, :user_id, CAST(:data AS jsonb))
    """
)
# The lease keeps a re-offered change (sweeper, requeue) from asking the provider while a
# worker already is; an expired lease means that worker died.
CLAIM_LEASE_S = 300
_CLAIM = text(
    """
    UPDATE message_changes ch SET attempts = ch.attempts + 1, claimed_at = now()
    FROM messages m
    WHERE ch.tenant_id = :t AND ch.id = :id AND ch.status = 'pending' AND m.id = ch.message_id
      AND (ch.claimed_at IS NULL OR ch.claimed_at < now() - make_interval(secs => :lease))
    RETURNING ch.id, ch.tenant_id, ch.message_id, m.ticket_id, m.channel_id, ch.kind, ch.body,
              m.type AS message_type, m.provider_message_id, ch.attempts
    """
)
_RELEASE = text("UPDATE message_changes SET claimed_at = NULL WHERE tenant_id = :t AND id = :id")
_FINISH = text(
    """
    UPDATE message_changes SET status = :status, error_code = :code, error_message = :error,
        finished_at = now(), claimed_at = NULL
    WHERE tenant_id = :t AND id = :id AND status = 'pending'
    RETURNING id
    """
)
# A media message's body is its caption, kept in two places; both change together.
_APPLY_EDIT = text(
    """
    UPDATE messages SET body = :body, edited_at = now(),
        media = CASE WHEN jsonb_array_length(media) = 0 THEN media
                     ELSE jsonb_set(media, '{0,caption}', to_jsonb(CAST(:body AS text))) END
    WHERE tenant_id = :t AND id = :id
    """
)
_APPLY_DELETE = text("UPDATE messages SET deleted_at = now() WHERE tenant_id = :t AND id = :id")
_STALE = text(
    """
    SELECT tenant_id, id FROM message_changes
    WHERE status = 'pending' AND created_at < now() - make_interval(secs => :older_than_s)
      AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => :lease))
    ORDER BY id LIMIT :limit
    """
)


def request_change(
    conn: Connection,
    *,
    tenant_id: int,
    message_id: int,
    user_id: int | None,
    kind: ChangeKind,
    body: str | None,
    supports: Supports,
) -> RequestedChange:
    """Record a pending edit (with its new `body`) or deletion of a message already sent.

    Raises NotFoundError, or MessageStateError (the API answers 409) naming why the change
    cannot be made: a received message, one the provider does not hold yet, one already
    deleted, a channel whose provider cannot make this change, or another change under way.
    """
    row = conn.execute(_LOCK_MESSAGE, {"t": tenant_id, "id": message_id}).mappings().first()
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    _check_changeable(row, kind=kind, supports=supports)
    try:
        with conn.begin_nested():
            change_id = conn.execute(
                _INSERT,
                {
                    "t": tenant_id,
                    "message_id": message_id,
                    "kind": kind,
                    "body": body,
                    "user_id": user_id,
                },
            ).scalar_one()
    except IntegrityError:
        raise MessageStateError(
            f"Message {message_id} has a change under way; wait for it to finish."
        ) from None
    ticket_id = int(row["ticket_id"])
    conn.execute(
        _EVENT,
        {
            "t": tenant_id,
            "ticket_id": ticket_id,
            "type": f"message_{kind}_requested",
            "user_id": user_id,
            "data": json.dumps({"message_id": message_id, "change_id": change_id}),
        },
    )
    outbox_id = insert_outbox(
        conn,
        tenant_id=tenant_id,
        topic="message.updated",
        payload={"message_id": message_id, "ticket_id": ticket_id, "change": kind},
    )
    return RequestedChange(
        change_id=change_id, message_id=message_id, ticket_id=ticket_id, outbox_ids=(outbox_id,)
    )


def _check_changeable(m: RowMapping, *, kind: ChangeKind, supports: Supports) -> None:
    message_id, status = m["id"], m["status"]
    verb = "edited" if kind == "edit" else "deleted"
    if m["direction"] != "out":
        raise MessageStateError(
            f"Message {message_id} was received from the contact; only our own messages can be "
            f"{verb}."
        )
    if m["deleted"]:
        raise MessageStateError(f"Message {message_id} is already deleted.")
    if status == "failed":
        raise MessageStateError(
            f"Message {message_id} is already failed; it never reached the contact, so it "
            f"cannot be {verb}."
        )
    channel_type = ChannelType(str(m["channel_type"]))
    if not supports(channel_type, kind):
        raise MessageStateError(
            f"Message {message_id} is already {status}, and {channel_type.value} does not let a "
            f"sent message be {verb}; only Telegram does."
        )
    if status not in _PROVIDER_HOLDS or not m["provider_message_id"]:
        raise MessageStateError(
            f"Message {message_id} is being sent; wait until the provider has it."
        )
    if kind == "edit" and m["type"] == "template":
        raise MessageStateError(f"Message {message_id} is a template message; it has no body.")


def claim_change(conn: Connection, *, tenant_id: int, change_id: int) -> ChangeJob | None:
    """The pending change, claimed and its attempt counted; None once it is settled (or
    never was), or while another worker holds it."""
    params = {"t": tenant_id, "id": change_id, "lease": CLAIM_LEASE_S}
    row = conn.execute(_CLAIM, params).mappings().first()
    return None if row is None else ChangeJob.model_validate(dict(row))


def release_change(conn: Connection, job: ChangeJob) -> None:
    """Give the claim back after a failed attempt that will be retried."""
    conn.execute(_RELEASE, {"t": job.tenant_id, "id": job.id})


def settle_change(
    conn: Connection,
    job: ChangeJob,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
) -> list[int]:
    """Mark the change done (and apply it to the message) or failed; its outbox ids.

    Settling twice is a no-op: the second call finds nothing pending and returns [].
    """
    failed = error_code is not None
    finished = conn.execute(
        _FINISH,
        {
            "t": job.tenant_id,
            "id": job.id,
            "status": "failed" if failed else "done",
            "code": error_code,
            "error": error_message,
        },
    ).first()
    if finished is None:
        return []
    if not failed:
        apply = _APPLY_EDIT if job.kind == "edit" else _APPLY_DELETE
        conn.execute(apply, {"t": job.tenant_id, "id": job.message_id, "body": job.body})
    conn.execute(
        _EVENT,
        {
            "t": job.tenant_id,
            "ticket_id": job.ticket_id,
            "type": f"message_{job.kind}_{'failed' if failed else 'done'}",
            "user_id": None,
            "data": json.dumps(
                {"message_id": job.message_id, "change_id": job.id, "error_code": error_code}
            ),
        },
    )
    payload: dict[str, object] = {
        "message_id": job.message_id,
        "ticket_id": job.ticket_id,
        "change": job.kind,
        "change_status": "failed" if failed else "done",
    }
    if failed:
        payload["error_code"] = error_code
    return [insert_outbox(conn, tenant_id=job.tenant_id, topic="message.updated", payload=payload)]


def stale_changes(conn: Connection, *, older_than_s: int, limit: int) -> list[tuple[int, int]]:
    """(tenant_id, change_id) of changes pending longer than expected (system scope)."""
    params = {"older_than_s": older_than_s, "limit": limit, "lease": CLAIM_LEASE_S}
    rows = conn.execute(_STALE, params).all()
    return [(int(r[0]), int(r[1])) for r in rows]
