"""Template variables, auto-reply priority and time windows, auto-tag matching (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from engine.automation.rules import (
    AutoReply,
    AutoTagRule,
    in_window,
    pick_auto_reply,
    tags_to_apply,
)
from engine.automation.templates import (
    TemplateContext,
    UnknownVariableError,
    greeting,
    render,
    validate_template,
)

# --- templates -------------------------------------------------------------------------


def test_render_fills_every_variable() -> None:
    ctx = TemplateContext(
        contact_name="Ana Lima",
        protocol="2026112900000042",
        agent="Bruno",
        queue="Sales",
        time_zone="America/Sao_Paulo",
        now=datetime(2026, 11, 29, 13, 0, tzinfo=UTC),  # 10:00 in São Paulo
    )
    text = "{{greeting}} {{name}} / {{first_name}}: #{{protocol}}, {{agent}} of {{queue}}"
    assert render(text, ctx) == "Good morning Ana Lima / Ana: #2026112900000042, Bruno of Sales"


def test_missing_values_use_the_fallback_or_nothing() -> None:
    ctx = TemplateContext()
    assert render("Hi {{first_name|there}}, I am {{agent}}.", ctx) == "Hi there, I am ."


@pytest.mark.parametrize(
    ("utc_hour", "zone", "expected"),
    [
        (8, "UTC", "Good morning"),
        (12, "UTC", "Good afternoon"),
        (21, "UTC", "Good evening"),
        (3, "UTC", "Good evening"),
        (12, "Asia/Tokyo", "Good evening"),  # 21:00 in Tokyo
        (23, "America/Los_Angeles", "Good afternoon"),  # 15:00 in Los Angeles
    ],
)
def test_greeting_follows_the_tenants_clock(utc_hour: int, zone: str, expected: str) -> None:
    assert greeting(datetime(2026, 11, 29, utc_hour, tzinfo=UTC), zone) == expected


def test_validate_template_rejects_unknown_variables_by_name() -> None:
    assert validate_template("{{ name }} {{queue}}") == "{{ name }} {{queue}}"
    with pytest.raises(UnknownVariableError) as caught:
        validate_template("Hello {{phone}}")
    assert caught.value.variable == "phone"
    assert "{{protocol}}" in str(caught.value)  # lists what is known


# --- auto-replies ----------------------------------------------------------------------


def reply(id: int, pattern: str, **kw: object) -> AutoReply:
    fields: dict[str, object] = {
        "id": id,
        "channel_id": None,
        "match_kind": "keyword",
        "pattern": pattern,
        "reply": f"reply {id}",
        "priority": 0,
        "active_from": None,
        "active_to": None,
    }
    fields.update(kw)
    return AutoReply.model_validate(fields)


NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_highest_priority_match_wins() -> None:
    replies = [reply(1, "price"), reply(2, "price", priority=5), reply(3, "hello", priority=9)]
    chosen = pick_auto_reply(
        replies, channel_id=1, said="What's the PRICE?", now=NOON, time_zone="UTC"
    )
    assert chosen is not None and chosen.id == 2


def test_keyword_is_a_whole_word_and_regex_finds() -> None:
    replies = [reply(1, "pix"), reply(2, r"order\s*#?\d+", match_kind="regex")]
    assert (
        pick_auto_reply(replies, channel_id=1, said="pixel art", now=NOON, time_zone="UTC") is None
    )
    found = pick_auto_reply(replies, channel_id=1, said="my Order #123", now=NOON, time_zone="UTC")
    assert found is not None and found.id == 2


def test_channel_scope() -> None:
    replies = [reply(1, "hi", channel_id=2, priority=9), reply(2, "hi")]
    on_two = pick_auto_reply(replies, channel_id=2, said="hi", now=NOON, time_zone="UTC")
    on_one = pick_auto_reply(replies, channel_id=1, said="hi", now=NOON, time_zone="UTC")
    assert (on_two and on_two.id, on_one and on_one.id) == (1, 2)


def test_time_window_in_the_tenant_zone_and_across_midnight() -> None:
    night = reply(1, "hi", active_from=time(22, 0), active_to=time(6, 0), priority=9)
    day = reply(2, "hi")
    # 12:00 UTC is 09:00 in São Paulo: outside the night window.
    chosen = pick_auto_reply(
        [night, day], channel_id=1, said="hi", now=NOON, time_zone="America/Sao_Paulo"
    )
    assert chosen is not None and chosen.id == 2
    late = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # 23:30 in São Paulo
    chosen = pick_auto_reply(
        [night, day], channel_id=1, said="hi", now=late, time_zone="America/Sao_Paulo"
    )
    assert chosen is not None and chosen.id == 1


@pytest.mark.parametrize(
    ("start", "end", "at", "inside"),
    [
        (time(9), time(18), time(9), True),
        (time(9), time(18), time(18), False),
        (time(22), time(6), time(23, 59), True),
        (time(22), time(6), time(5, 59), True),
        (time(22), time(6), time(12), False),
        (None, None, time(3), True),
    ],
)
def test_in_window(start: time | None, end: time | None, at: time, inside: bool) -> None:
    assert in_window(start, end, at) is inside


# --- auto-tags -------------------------------------------------------------------------


def test_tags_to_apply_once_each_in_scope() -> None:
    rules = [
        AutoTagRule(tag_id=3, channel_id=None, match_kind="keyword", pattern="refund"),
        AutoTagRule(tag_id=3, channel_id=None, match_kind="regex", pattern="money back"),
        AutoTagRule(tag_id=1, channel_id=None, match_kind="regex", pattern=r"\burgent\b"),
        AutoTagRule(tag_id=2, channel_id=9, match_kind="keyword", pattern="refund"),
    ]
    said = "URGENT: I want a refund, money back now"
    assert tags_to_apply(rules, channel_id=1, said=said) == [1, 3]
    assert tags_to_apply(rules, channel_id=9, said="refund") == [2, 3]
    assert tags_to_apply(rules, channel_id=1, said=None) == []
