"""The automate stage on real PostgreSQL: bots, hand-offs, out-of-hours, auto-replies, tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from engine.db import set_system
from engine.store.tenants import insert_tenant
from pipelines.bot_timeouts import hand_off_idle_bots
from tests.automation.flow_samples import menu_flow
from tests.automation.stage_world import (
    MONDAY_NOON,
    SUNDAY_NOON,
    WEEKDAYS_9_TO_18,
    World,
    world_in,
)

MENU = "How can we help?\n1 - Sales\n2 - Support\n3 - Opening hours"


@pytest.fixture
def world(clean_db: Engine) -> Iterator[World]:
    # A clean database: the world's channel uses the fixtures' WhatsApp number, which a test
    # run earlier in this process may have left behind.
    yield from world_in(clean_db)


@pytest.fixture
def queues(world: World) -> tuple[int, int]:
    return world.queue("Sales"), world.queue("Support")


def with_menu(world: World, queues: tuple[int, int], **overrides: object) -> int:
    flow_id = world.flow(menu_flow(sales_queue=queues[0], support_queue=queues[1], **overrides))
    world.attach(flow_id)
    return flow_id


# --- the bot ---------------------------------------------------------------------------


def test_first_message_greets_and_shows_the_menu(world: World, queues: tuple[int, int]) -> None:
    flow_id = with_menu(world, queues)
    outcome = world.says("Oi")
    assert world.bot_messages() == ["Good afternoon, Ana! Welcome to Acme.", MENU]
    assert len(outcome.sends) == 2  # enqueued by the worker after commit
    ticket = world.ticket()
    assert ticket["chat_flow_id"] == flow_id
    assert ticket["chat_flow_state"]["node"] == "menu"
    assert ticket["queue_id"] is None
    assert "bot_started" in world.event_types()
    # The bot answering is not a person answering: the first-response clock still runs.
    assert (ticket["first_response_at"], ticket["answered"], ticket["unread_count"]) == (
        None,
        False,
        1,
    )


def test_menu_answer_moves_to_queue_and_assigns_an_online_agent(
    world: World, queues: tuple[int, int]
) -> None:
    sales, _ = queues
    world.agent("Offline", sales, online=False)
    bruno = world.agent("Bruno", sales)
    with_menu(world, queues)
    world.says("Oi")
    before = world.sql("SELECT coalesce(max(id), 0) FROM outbox").scalar_one()
    outcome = world.says("1")
    ticket = world.ticket()
    assert (ticket["queue_id"], ticket["user_id"]) == (sales, bruno)
    assert ticket["chat_flow_state"] is None
    assert world.bot_messages()[-1] == "Connecting you to sales."
    audit = [kind for kind in world.event_types() if kind != "message_sent"]
    assert audit[-3:] == ["bot_step", "bot_handoff", "assigned"]
    # Every event written is published at once, the assignment's too (not left to the sweep).
    written = world.sql("SELECT id FROM outbox WHERE id > :b ORDER BY id", b=before)
    assert sorted(outcome.outbox_ids) == [r[0] for r in written]


def test_go_to_then_close_action(world: World, queues: tuple[int, int]) -> None:
    with_menu(world, queues)
    world.says("Oi")
    world.says("3")
    assert world.bot_messages()[-1] == "We open 9-18. Anything else?"
    assert world.ticket()["chat_flow_state"]["node"] == "hours"
    world.says("no, thanks")
    assert world.ticket()["status"] == "closed"
    assert world.event_types()[-1] == "bot_closed"


def test_not_understood_then_max_retries_hands_off(world: World, queues: tuple[int, int]) -> None:
    support = queues[1]
    with_menu(world, queues, on_max_retries={"queue_id": support})
    world.says("Oi")
    world.says("banana")
    world.says("banana")
    assert world.ticket()["bot_retries"] == 2
    assert world.bot_messages()[-2:] == ["Sorry, please answer with a number.", MENU]
    world.says("banana")
    ticket = world.ticket()
    assert (ticket["queue_id"], ticket["chat_flow_state"], ticket["bot_retries"]) == (
        support,
        None,
        0,
    )
    assert ("bot_gave_up", "max_retries") in [
        (kind, data.get("reason")) for kind, data in world.events()
    ]


def test_deleted_queue_falls_back_to_default_queue_and_says_why(
    world: World, queues: tuple[int, int]
) -> None:
    sales, _ = queues
    fallback = world.queue("Reception")
    world.setting("default_queue_id", fallback)
    with_menu(world, queues)
    world.says("Oi")
    world.sql("DELETE FROM queues WHERE id = :q", q=sales)
    world.says("1")
    assert world.ticket()["queue_id"] == fallback
    handoff = next(data for kind, data in world.events() if kind == "bot_handoff")
    assert handoff["fallback"] == (
        f"queue {sales} no longer exists; handed to default queue {fallback}"
    )


def test_assign_to_deleted_user_falls_back(world: World, queues: tuple[int, int]) -> None:
    fallback = world.queue("Reception")
    world.setting("default_queue_id", fallback)
    definition = menu_flow(sales_queue=queues[0], support_queue=queues[1])
    definition["nodes"][0]["conditions"][1]["action"] = {
        "type": "assign_to_user",
        "user_id": 999999,
    }
    world.attach(world.flow(definition))
    world.says("Oi")
    world.says("2")
    ticket = world.ticket()
    assert (ticket["queue_id"], ticket["user_id"]) == (fallback, None)


def test_assign_to_user_opens_the_ticket_for_them(world: World, queues: tuple[int, int]) -> None:
    carla = world.agent("Carla")
    definition = menu_flow(sales_queue=queues[0], support_queue=queues[1])
    definition["nodes"][0]["conditions"][1]["action"] = {"type": "assign_to_user", "user_id": carla}
    world.attach(world.flow(definition))
    world.says("Oi")
    world.says("2")
    ticket = world.ticket()
    assert (ticket["status"], ticket["user_id"]) == ("open", carla)


def test_close_keyword_lets_the_customer_close(world: World, queues: tuple[int, int]) -> None:
    with_menu(world, queues, close_message="Bye {{first_name}}!")
    world.says("Oi")
    world.says("SAIR")
    assert world.ticket()["status"] == "closed"
    assert world.bot_messages()[-1] == "Bye Ana!"
    assert "closed_by_customer" in world.event_types()


def test_test_phone_flow_only_runs_for_that_contact(world: World, queues: tuple[int, int]) -> None:
    reception = world.queue("Reception")
    flow_id = world.flow(
        menu_flow(sales_queue=queues[0], support_queue=queues[1], test_phone="+5511911112222"),
        name="Trial",
    )
    world.attach(flow_id, default_queue_id=reception)
    world.says("Oi")  # Ana is not the test phone: no bot, the channel's default queue
    assert world.bot_messages() == []
    assert world.ticket()["queue_id"] == reception
    world.says("Oi", wa_id="5511911112222")
    assert world.bot_messages()[0].startswith("Good afternoon")


def test_tenant_default_flow_runs_when_the_channel_has_none(world: World) -> None:
    world.flow(menu_flow(), default=True)
    world.says("Oi")
    assert len(world.bot_messages()) == 2


def test_idle_bot_is_handed_over_by_the_scheduler_job(
    world: World, queues: tuple[int, int]
) -> None:
    support = queues[1]
    with_menu(
        world,
        queues,
        inactivity_timeout_s=600,
        on_inactivity={"queue_id": support, "message": "An agent will be with you shortly."},
    )
    world.says("Oi")
    deadline = world.ticket()["bot_timeout_at"]
    assert deadline == MONDAY_NOON + timedelta(seconds=600)
    handed, _ = hand_off_idle_bots(world.conn, now=deadline - timedelta(seconds=1))
    assert handed == 0
    handed, outcome = hand_off_idle_bots(world.conn, now=deadline)
    assert handed == 1 and len(outcome.sends) == 1
    world.sql("SELECT set_config('app.tenant_id', :t, true)", t=str(world.tenant_id))
    ticket = world.ticket()
    assert (ticket["queue_id"], ticket["chat_flow_state"], ticket["bot_timeout_at"]) == (
        support,
        None,
        None,
    )
    assert world.bot_messages()[-1] == "An agent will be with you shortly."


# --- out of hours ----------------------------------------------------------------------


def test_out_of_hours_message_once_per_closed_period_and_no_bot(
    world: World, queues: tuple[int, int]
) -> None:
    with_menu(world, queues)
    world.setting("business_hours", WEEKDAYS_9_TO_18)
    world.setting("out_of_hours_message", "We are closed, {{first_name}}. Back Monday 9h.")
    world.says("Oi", now=SUNDAY_NOON)
    world.says("Hello??", now=SUNDAY_NOON + timedelta(hours=2))
    assert world.bot_messages() == ["We are closed, Ana. Back Monday 9h."]
    sent = [data for kind, data in world.events() if kind == "out_of_hours_sent"]
    assert sent == [{"period_start": "2026-11-27T18:00:00+00:00"}]  # Friday's closing time
    world.says("Anyone?", now=MONDAY_NOON + timedelta(hours=8))  # Monday 20:00: a new period
    assert world.bot_messages()[-1] == "We are closed, Ana. Back Monday 9h."
    assert len(world.bot_messages()) == 2
    assert world.ticket()["chat_flow_state"] is None  # the bot never ran while closed


def test_bot_starts_once_open_after_an_out_of_hours_first_message(
    world: World, queues: tuple[int, int]
) -> None:
    with_menu(world, queues)
    world.setting("business_hours", WEEKDAYS_9_TO_18)
    world.setting("out_of_hours_message", "We are closed.")
    world.says("Oi", now=SUNDAY_NOON)
    world.says("Oi again", now=MONDAY_NOON)
    assert world.bot_messages() == ["We are closed.", "Good afternoon, Ana! Welcome to Acme.", MENU]


# --- auto-replies and auto-tags ---------------------------------------------------------


def auto_reply(world: World, name: str, pattern: str, reply: str, **kw: object) -> None:
    columns = {"name": name, "match_kind": "keyword", "pattern": pattern, "reply": reply, **kw}
    names = ", ".join(columns)
    binds = ", ".join(f":{k}" for k in columns)
    world.sql(f"INSERT INTO auto_replies (tenant_id, {names}) VALUES (:t, {binds})", **columns)


def test_auto_reply_by_priority_when_no_bot(world: World) -> None:
    auto_reply(world, "low", "price", "See our price list.", priority=1)
    auto_reply(world, "high", "price", "Prices: {{protocol}}", priority=5)
    auto_reply(world, "other", "refund", "Refunds take 5 days.", priority=9)
    world.says("what is the price?")
    protocol = world.ticket()["protocol"]
    assert world.bot_messages() == [f"Prices: {protocol}"]


def test_no_auto_reply_when_the_bot_answered(world: World, queues: tuple[int, int]) -> None:
    with_menu(world, queues)
    auto_reply(world, "hi", "oi", "Auto hello")
    world.says("Oi")
    assert "Auto hello" not in world.bot_messages()


def test_auto_reply_time_window_and_channel(world: World) -> None:
    other = world.sql(
        "INSERT INTO channels (tenant_id, type, name, external_id) "
        "VALUES (:t, 'sms', 'SMS', '+15550001111') RETURNING id"
    ).scalar_one()
    auto_reply(world, "sms only", "hi", "SMS hello", channel_id=other, priority=9)
    auto_reply(world, "mornings", "hi", "Morning hello", active_from="06:00", active_to="11:00")
    world.says("hi")  # Monday 12:00 UTC, WhatsApp: neither applies
    assert world.bot_messages() == []
    world.says("hi", now=MONDAY_NOON - timedelta(hours=3))
    assert world.bot_messages() == ["Morning hello"]


def test_auto_tags_by_rule_and_by_tag_keywords(world: World) -> None:
    vip = world.sql(
        "INSERT INTO tags (tenant_id, name, auto_keywords) VALUES (:t, 'VIP', ARRAY['gold']) "
        "RETURNING id"
    ).scalar_one()
    refund = world.sql(
        "INSERT INTO tags (tenant_id, name) VALUES (:t, 'Refund') RETURNING id"
    ).scalar_one()
    world.sql(
        "INSERT INTO auto_tag_rules (tenant_id, tag_id, match_kind, pattern) "
        "VALUES (:t, :tag, 'regex', 'money\\s+back')",
        tag=refund,
    )
    world.says("I'm a GOLD member and want my money  back")
    world.says("money back please")  # already tagged: nothing new
    tags = world.sql("SELECT tag_id FROM contact_tags ORDER BY tag_id").scalars().all()
    assert tags == sorted([vip, refund])
    tagged = [data for kind, data in world.events() if kind == "auto_tagged"]
    assert [d["tag_ids"] for d in tagged] == [sorted([vip, refund])]


def test_other_tenants_default_flow_never_runs(world: World) -> None:
    set_system(world.conn)
    other = insert_tenant(world.conn, name="Other")
    world.conn.execute(
        text(
            "INSERT INTO chat_flows (tenant_id, name, definition, is_default) "
            "VALUES (:t, 'Theirs', CAST(:d AS jsonb), true)"
        ),
        {"t": other, "d": json.dumps(menu_flow())},
    )
    world.says("Oi")
    assert world.bot_messages() == []
    assert world.ticket()["chat_flow_id"] is None
