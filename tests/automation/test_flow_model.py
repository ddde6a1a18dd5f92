"""Chat-flow validation on save and the interpreter's every node, condition and action."""

from __future__ import annotations

from typing import Any

import pytest

from engine.automation import bot
from engine.automation.bot import BotState
from engine.automation.flows import ChatFlowDefinition, HandOff, InvalidFlowError, parse_flow
from tests.automation.flow_samples import menu_flow


def problems(definition: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidFlowError) as caught:
        parse_flow(definition)
    return {p.field: p.message for p in caught.value.problems}


def texts(turn: bot.Turn) -> list[str | None]:
    return [m.text for m in turn.messages]


# --- validation ------------------------------------------------------------------------


def test_a_valid_flow_parses() -> None:
    flow = parse_flow(menu_flow())
    assert flow.start == "menu"
    assert [n.id for n in flow.nodes] == ["menu", "hours"]


def test_dangling_go_to_names_the_node_and_condition() -> None:
    definition = menu_flow()
    definition["nodes"][0]["conditions"][2]["action"]["node"] = "nowhere"
    found = problems(definition)
    assert found == {"nodes[menu].conditions.2.action.node": "no node 'nowhere'"}


def test_unreachable_node_is_named() -> None:
    definition = menu_flow()
    definition["nodes"].append({"id": "orphan", "messages": [{"text": "never seen"}]})
    assert problems(definition) == {"nodes[orphan]": "unreachable from the start node 'menu'"}


def test_duplicate_ids_and_missing_start() -> None:
    definition = menu_flow(start="begin")
    definition["nodes"][1]["id"] = "menu"
    found = problems(definition)
    assert found["nodes[menu].id"] == "duplicate node id"
    assert found["start"] == "no node 'begin'"


def test_unknown_variable_names_the_node_and_field() -> None:
    definition = menu_flow()
    definition["nodes"][1]["messages"][0]["text"] = "Hi {{nickname}}"
    found = problems(definition)
    assert list(found) == ["nodes[hours].messages.0.text"]
    assert "unknown variable {{nickname}}" in found["nodes[hours].messages.0.text"]


def test_bad_regex_and_incomplete_conditions_are_refused() -> None:
    definition = menu_flow()
    definition["nodes"][1]["conditions"][0]["pattern"] = "(unclosed"
    definition["nodes"][0]["conditions"][0]["values"] = []
    found = problems(definition)
    assert "not a valid regular expression" in found["nodes[hours].conditions.0.pattern"]
    assert found["nodes[menu].conditions.0"] == "an exact condition needs values"


def test_unknown_action_and_test_phone_are_refused() -> None:
    definition = menu_flow(test_phone="not a phone")
    definition["nodes"][0]["conditions"][0]["action"] = {"type": "explode"}
    found = problems(definition)
    assert "test_phone" in found
    assert any(field.startswith("nodes[menu].conditions.0.action") for field in found)


# --- the interpreter -------------------------------------------------------------------


@pytest.fixture
def flow() -> ChatFlowDefinition:
    return parse_flow(menu_flow())


def test_start_sends_welcome_then_the_menu_with_options(flow: ChatFlowDefinition) -> None:
    turn = bot.start(flow)
    assert texts(turn) == [
        "{{greeting}}, {{first_name|there}}! Welcome to Acme.",
        "How can we help?\n1 - Sales\n2 - Support\n3 - Opening hours",
    ]
    assert turn.state == BotState(node="menu")
    assert turn.ending is None
    assert [s.type for s in turn.steps] == ["bot_started"]


@pytest.mark.parametrize("said", ["1", " SALES ", "sales"])
def test_exact_match_ignores_case_and_spaces_and_moves_to_queue(
    flow: ChatFlowDefinition, said: str
) -> None:
    turn = bot.answer(flow, BotState("menu"), said)
    assert texts(turn) == ["Connecting you to sales."]
    assert turn.state is None
    assert turn.ending == bot.Ending("bot_action", target=HandOff(queue_id=1))


def test_go_to_sends_the_target_node_and_resets_retries(flow: ChatFlowDefinition) -> None:
    turn = bot.answer(flow, BotState("menu", retries=1), "3")
    assert texts(turn) == ["We open 9-18. Anything else?"]
    assert turn.state == BotState("hours", retries=0)
    assert turn.steps[0].data["to"] == "hours"


def test_regex_condition_closes_and_any_answer_goes_back(flow: ChatFlowDefinition) -> None:
    closing = bot.answer(flow, BotState("hours"), "No thanks")
    assert closing.ending == bot.Ending("bot_action", close=True)
    anything = bot.answer(flow, BotState("hours"), "what about weekends?")
    assert anything.state == BotState("menu")


def test_assign_to_user_action() -> None:
    definition = menu_flow()
    definition["nodes"][0]["conditions"][1]["action"] = {"type": "assign_to_user", "user_id": 7}
    turn = bot.answer(parse_flow(definition), BotState("menu"), "2")
    assert turn.ending == bot.Ending("bot_action", target=HandOff(user_id=7))


def test_not_understood_repeats_current_node_then_hands_off(flow: ChatFlowDefinition) -> None:
    first = bot.answer(flow, BotState("menu"), "banana")
    assert texts(first)[0] == "Sorry, please answer with a number."
    assert first.state == BotState("menu", retries=1)
    second = bot.answer(flow, first.state, "banana")  # type: ignore[arg-type]
    assert second.state == BotState("menu", retries=2)
    third = bot.answer(flow, second.state, "banana")  # type: ignore[arg-type]
    assert third.state is None
    assert third.ending == bot.Ending("max_retries", target=HandOff())


def test_not_understood_can_return_to_start() -> None:
    flow = parse_flow(
        menu_flow(not_understood={"message": "Let's start over.", "return_to": "start"})
    )
    turn = bot.answer(flow, BotState("hours"), None)  # hours has an `any` condition…
    assert turn.state == BotState("menu")  # …so a message without text still matches it
    menu_only = menu_flow(not_understood={"message": "Again.", "return_to": "start"})
    menu_only["nodes"][1]["conditions"] = [
        {"match": "exact", "values": ["yes"], "action": {"type": "go_to", "node": "menu"}}
    ]
    turn = bot.answer(parse_flow(menu_only), BotState("hours"), "maybe")
    assert texts(turn)[0] == "Again."
    assert turn.state == BotState("menu", retries=1)


def test_hand_off_message_and_inactivity(flow: ChatFlowDefinition) -> None:
    flow = parse_flow(
        menu_flow(on_inactivity={"queue_id": 9, "message": "An agent will take over."})
    )
    turn = bot.timed_out(flow, BotState("menu"))
    assert texts(turn) == ["An agent will take over."]
    assert turn.ending == bot.Ending("inactivity", target=flow.on_inactivity)


def test_missing_node_restarts_the_flow(flow: ChatFlowDefinition) -> None:
    turn = bot.answer(flow, BotState("deleted-node"), "1")
    assert turn.state == BotState("menu")
    assert [s.type for s in turn.steps] == ["bot_restarted", "bot_started"]


def test_close_keywords_and_test_phone(flow: ChatFlowDefinition) -> None:
    assert bot.close_requested(flow, " SAIR ")
    assert not bot.close_requested(flow, "sair agora")
    limited = parse_flow(menu_flow(test_phone="+55 11 98765-4321"))
    assert limited.applies_to("+5511987654321")
    assert not limited.applies_to("+5511911112222")
    assert flow.applies_to(None)
