"""Auto-replies and auto-tags: a tenant's keyword/regex rules, loaded once per batch, matched
per inbound message. Matching is pure; loading and tagging take the caller's connection."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from engine.automation.flows import MATCH_WINDOW_CHARS
from engine.events import Frozen
from engine.store.conversations import insert_ticket_event


class AutoReply(Frozen):
    id: int
    channel_id: int | None
    match_kind: str
    pattern: str
    reply: str
    priority: int
    active_from: time | None
    active_to: time | None


class AutoTagRule(Frozen):
    tag_id: int
    channel_id: int | None
    match_kind: str
    pattern: str


def text_matches(match_kind: str, pattern: str, said: str | None) -> bool:
    """A keyword matches as a whole word or phrase, ignoring case; a regex where it finds."""
    window = (said or "")[:MATCH_WINDOW_CHARS]
    if not window:
        return False
    if match_kind == "keyword":
        return re.search(rf"(?<!\w){re.escape(pattern)}(?!\w)", window, re.IGNORECASE) is not None
    try:
        return re.search(pattern, window, re.IGNORECASE) is not None
    except re.error:  # validated on save; a pattern from before that is skipped, not fatal
        return False


def in_window(start: time | None, end: time | None, local: time) -> bool:
    """Whether local time falls in [start, end); a window may span midnight (22:00–06:00)."""
    if start is None or end is None:
        return True
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def pick_auto_reply(
    replies: Sequence[AutoReply],
    *,
    channel_id: int,
    said: str | None,
    now: datetime,
    time_zone: str,
) -> AutoReply | None:
    """The first matching reply by priority (highest first, then oldest), active right now
    on the tenant's clock, for this channel or every channel."""
    local = now.astimezone(ZoneInfo(time_zone)).time()
    for reply in sorted(replies, key=lambda r: (-r.priority, r.id)):
        if reply.channel_id not in (None, channel_id):
            continue
        if not in_window(reply.active_from, reply.active_to, local):
            continue
        if text_matches(reply.match_kind, reply.pattern, said):
            return reply
    return None


def tags_to_apply(rules: Sequence[AutoTagRule], *, channel_id: int, said: str | None) -> list[int]:
    """Ids of the tags whose rules match the message, each once, in id order."""
    return sorted(
        {
            r.tag_id
            for r in rules
            if r.channel_id in (None, channel_id) and text_matches(r.match_kind, r.pattern, said)
        }
    )


_AUTO_REPLIES = text(
    """
    SELECT id, channel_id, match_kind, pattern, reply, priority, active_from, active_to
    FROM auto_replies WHERE tenant_id = :t AND enabled
    ORDER BY priority DESC, id
    """
)
# Rules of their own, plus the plain keywords a tag carries (tags.auto_keywords).
_AUTO_TAGS = text(
    """
    SELECT tag_id, channel_id, match_kind, pattern FROM auto_tag_rules
    WHERE tenant_id = :t AND enabled
    UNION ALL
    SELECT id, NULL, 'keyword', unnest(auto_keywords) FROM tags WHERE tenant_id = :t
    """
)


def get_auto_replies(conn: Connection, *, tenant_id: int) -> list[AutoReply]:
    rows = conn.execute(_AUTO_REPLIES, {"t": tenant_id}).mappings().all()
    return [AutoReply.model_validate(dict(r)) for r in rows]


def get_auto_tag_rules(conn: Connection, *, tenant_id: int) -> list[AutoTagRule]:
    rows = conn.execute(_AUTO_TAGS, {"t": tenant_id}).mappings().all()
    return [AutoTagRule.model_validate(dict(r)) for r in rows if r["pattern"]]


_TAG = text(
    """
    INSERT INTO contact_tags (tenant_id, contact_id, tag_id)
    SELECT :t, :c, id FROM tags WHERE tenant_id = :t AND id = ANY(:ids)
    ON CONFLICT DO NOTHING
    RETURNING tag_id
    """
)


def tag_contact(
    conn: Connection, *, tenant_id: int, ticket_id: int, contact_id: int, tag_ids: list[int]
) -> list[int]:
    """Give the contact the tags it lacks; the ids newly given (audited on the ticket)."""
    if not tag_ids:
        return []
    added = sorted(
        int(r[0]) for r in conn.execute(_TAG, {"t": tenant_id, "c": contact_id, "ids": tag_ids})
    )
    if added:
        insert_ticket_event(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            type="auto_tagged",
            data={"contact_id": contact_id, "tag_ids": added},
        )
    return added


_OOH_SENT = text(
    """
    SELECT EXISTS (SELECT 1 FROM ticket_events
                   WHERE tenant_id = :t AND ticket_id = :id AND type = 'out_of_hours_sent'
                     AND data->>'period_start' = :period)
    """
)


def out_of_hours_sent(
    conn: Connection, *, tenant_id: int, ticket_id: int, period: datetime
) -> bool:
    """Whether the absence message already went out on this ticket in this closed period.

    The caller holds the contact's lock, so two messages of one ticket never race here.
    """
    params = {"t": tenant_id, "id": ticket_id, "period": period.isoformat()}
    return bool(conn.execute(_OOH_SENT, params).scalar_one())
