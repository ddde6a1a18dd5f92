"""Erase a contact: personal data removed or irreversibly anonymised in every table.

The contact row stays (tickets, campaigns and statistics point at it) with no name, phone or
e-mail; messages keep ids, direction and statuses but lose their content. Raw provider bodies
(inbox) and queued payloads (outbox, dead letters, tenant webhook deliveries) that mention one
of the contact's addresses are blanked. Idempotent: a second run finds nothing left to change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from pydantic import JsonValue
from sqlalchemy import Connection, text

from engine.privacy.export import insert_audit
from engine.privacy.redaction import MEDIA_URIS_OF, REDACT_MESSAGE_SET

ERASED_ACTION = "contact.erased"
# An address shorter than this could match unrelated bytes of a raw body.
_MIN_NEEDLE = 5
# ticket_events.data keys that may carry what the customer wrote or who they are.
_EVENT_TEXT_KEYS = ["body", "previous_body", "text", "name", "phone", "email", "subject"]
_ERASED_PAYLOAD = json.dumps({"erased": True})


@dataclass
class ErasureResult:
    """What changed, by table (counts only: an audit entry may hold this), and the media
    files to delete once the transaction commits."""

    contact_id: int
    counts: dict[str, int] = field(default_factory=dict)
    media_uris: list[str] = field(default_factory=list)


def erase_contact(
    conn: Connection, *, tenant_id: int, contact_id: int, user_id: int | None
) -> ErasureResult | None:
    """Erase the contact and the contacts merged into it; None when the tenant has no such
    contact. Writes an audit entry without personal data. Call inside a tenant transaction."""
    row = conn.execute(
        text("SELECT id FROM contacts WHERE tenant_id = :t AND id = :c FOR UPDATE"),
        {"t": tenant_id, "c": contact_id},
    ).first()
    if row is None:
        return None
    ids = [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT id FROM contacts WHERE tenant_id = :t AND (id = :c OR merged_into_id = :c) "
                "ORDER BY id FOR UPDATE"
            ),
            {"t": tenant_id, "c": contact_id},
        )
    ]
    result = ErasureResult(contact_id=contact_id)
    p = {"t": tenant_id, "ids": ids}
    needles = _needles(conn, p)
    result.media_uris = [
        str(r[0])
        for r in conn.execute(
            text(
                MEDIA_URIS_OF.format(
                    target="SELECT id FROM messages WHERE tenant_id = :t AND contact_id = ANY(:ids)"
                )
            ),
            p,
        )
        if r[0]
    ]
    for name, sql in _STEPS:
        params = {**p, "needles": needles, "keys": _EVENT_TEXT_KEYS}
        result.counts[name] = conn.execute(text(sql), params).rowcount
    counts: dict[str, JsonValue] = dict(result.counts)
    insert_audit(
        conn,
        tenant_id=tenant_id,
        user_id=user_id,
        action=ERASED_ACTION,
        contact_id=contact_id,
        data={"contact_ids": list(ids), "counts": counts},
    )
    return result


def _needles(conn: Connection, p: dict[str, object]) -> list[str]:
    """The contact's addresses as they may appear in raw bodies: E.164 with and without `+`,
    e-mail plain and URL-encoded, every channel identity (PSID, chat id, address)."""
    rows = conn.execute(
        text(
            "SELECT phone, email FROM contacts WHERE tenant_id = :t AND id = ANY(:ids) "
            "UNION ALL SELECT identity_key, external_id FROM contact_identities "
            "WHERE tenant_id = :t AND contact_id = ANY(:ids)"
        ),
        p,
    ).all()
    found: set[str] = set()
    for row in rows:
        for value in row:
            if not value:
                continue
            found.update({value, value.lstrip("+"), quote(value, safe="")})
    return sorted(n for n in found if len(n) >= _MIN_NEEDLE)


_MENTIONS = "EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) AS n WHERE {haystack})"
_IN_BYTES = _MENTIONS.format(haystack="position(convert_to(n, 'UTF8') in body) > 0")
_IN_PAYLOAD = (
    "("
    + _MENTIONS.format(haystack="strpos(payload::text, n) > 0")
    + " OR EXISTS (SELECT 1 FROM unnest(CAST(:ids AS bigint[])) AS i WHERE jsonb_path_exists("
    "payload, 'strict $.**.contact_id ? (@ == $c)', jsonb_build_object('c', i))))"
)
_PAYLOAD_SET = f"payload = CAST('{_ERASED_PAYLOAD}' AS jsonb)"

# (name in the counts, statement); each is scoped to the tenant and idempotent. Fragments
# are constants of this module; every value is bound (S608 below is about the f-strings).
_STEPS: list[tuple[str, str]] = [
    (
        "messages",
        f"UPDATE messages SET {REDACT_MESSAGE_SET} "
        "WHERE tenant_id = :t AND contact_id = ANY(:ids) AND redacted_at IS NULL",
    ),
    (
        "message_changes",
        "UPDATE message_changes SET body = CASE WHEN body IS NULL THEN NULL ELSE '' END "
        "WHERE tenant_id = :t AND body <> '' AND message_id IN "
        "(SELECT id FROM messages WHERE tenant_id = :t AND contact_id = ANY(:ids))",
    ),
    (
        "ticket_events",
        "UPDATE ticket_events SET data = data - CAST(:keys AS text[]) "
        "WHERE tenant_id = :t AND data ?| CAST(:keys AS text[]) AND ticket_id IN "
        "(SELECT id FROM tickets WHERE tenant_id = :t AND contact_id = ANY(:ids))",
    ),
    (
        "tickets",
        "UPDATE tickets SET chat_flow_state = NULL "
        "WHERE tenant_id = :t AND contact_id = ANY(:ids) AND chat_flow_state IS NOT NULL",
    ),
    (
        "reactions",
        "DELETE FROM message_reactions WHERE tenant_id = :t AND contact_id = ANY(:ids)",
    ),
    (
        "identities",
        "DELETE FROM contact_identities WHERE tenant_id = :t AND contact_id = ANY(:ids)",
    ),
    (
        "custom_fields",
        "DELETE FROM contact_custom_fields WHERE tenant_id = :t AND contact_id = ANY(:ids)",
    ),
    ("tags", "DELETE FROM contact_tags WHERE tenant_id = :t AND contact_id = ANY(:ids)"),
    ("wallets", "DELETE FROM wallets WHERE tenant_id = :t AND contact_id = ANY(:ids)"),
    (
        "campaign_contacts",
        "UPDATE campaign_contacts SET reason = NULL "
        "WHERE tenant_id = :t AND contact_id = ANY(:ids) AND reason IS NOT NULL",
    ),
    (
        "suppression_list",
        "DELETE FROM suppression_list WHERE tenant_id = :t AND address = ANY(:needles)",
    ),
    (
        "inbox",
        # A pending row may also carry other customers' events: it is left to be processed
        # (what it holds arrived after the erasure request and makes a new contact).
        "UPDATE inbox SET body = ''::bytea, note = 'erased' "
        f"WHERE tenant_id = :t AND status <> 'pending' AND {_IN_BYTES}",
    ),
    ("outbox", f"UPDATE outbox SET {_PAYLOAD_SET} WHERE tenant_id = :t AND {_IN_PAYLOAD}"),
    (
        "webhook_deliveries",
        f"UPDATE webhook_deliveries SET {_PAYLOAD_SET} WHERE tenant_id = :t AND {_IN_PAYLOAD}",
    ),
    (
        "dead_letters",
        f"UPDATE dead_letters SET {_PAYLOAD_SET}, error_message = 'erased', traceback = NULL "
        f"WHERE tenant_id = :t AND {_IN_PAYLOAD}",
    ),
    (
        "contacts",
        "UPDATE contacts SET name = NULL, phone = NULL, email = NULL, opted_out = true, "
        "erased_at = coalesce(erased_at, now()), updated_at = now() "
        "WHERE tenant_id = :t AND id = ANY(:ids) "
        "AND (erased_at IS NULL OR name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL)",
    ),
]
