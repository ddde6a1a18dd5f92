"""The chat-flow interpreter: one customer answer in, the bot's turn out. Pure (no I/O).

A turn lists the messages to send, the state to keep on the ticket (None once the bot is
done), what ends the bot (a hand-off or a close), and the steps to audit as ticket events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.automation.flows import (
    MATCH_WINDOW_CHARS,
    AssignToUser,
    ChatFlowDefinition,
    Close,
    Condition,
    FlowMessage,
    GoTo,
    HandOff,
    MoveToQueue,
    Node,
)


@dataclass(frozen=True)
class BotState:
    """Where the bot waits for an answer, and how many answers in a row it did not get."""

    node: str
    retries: int = 0


@dataclass(frozen=True)
class Ending:
    """The bot is done: hand the ticket to `target`, or close it (`close`)."""

    reason: str
    target: HandOff | None = None
    close: bool = False


@dataclass(frozen=True)
class Step:
    """One ticket event: `type` and its data."""

    type: str
    data: dict[str, object]


@dataclass(frozen=True)
class Turn:
    messages: list[FlowMessage] = field(default_factory=list)
    state: BotState | None = None
    ending: Ending | None = None
    steps: list[Step] = field(default_factory=list)


def start(flow: ChatFlowDefinition) -> Turn:
    """The bot greets: welcome message, then the start node's messages."""
    node = flow.node(flow.start)
    assert node is not None  # checked when the flow was saved
    welcome = [FlowMessage(text=flow.welcome)] if flow.welcome else []
    return Turn(
        messages=welcome + node_messages(node),
        state=BotState(node=node.id),
        steps=[Step("bot_started", {"node": node.id})],
    )


def answer(flow: ChatFlowDefinition, state: BotState, text: str | None) -> Turn:
    """The bot's turn after the customer answered `text` (None: a message without text)."""
    node = flow.node(state.node)
    if node is None:  # the flow was edited since: start over rather than get stuck
        restarted = start(flow)
        note = Step("bot_restarted", {"missing_node": state.node})
        return Turn(restarted.messages, restarted.state, None, [note, *restarted.steps])
    for index, cond in enumerate(node.conditions):
        if matches(cond, text):
            return _act(flow, node, index, cond)
    return _not_understood(flow, node, state)


def close_requested(flow: ChatFlowDefinition, text: str | None) -> bool:
    """Whether the customer's message is one of the flow's close keywords."""
    said = (text or "").strip().casefold()
    return bool(said) and any(said == k.casefold() for k in flow.close_keywords)


def timed_out(flow: ChatFlowDefinition, state: BotState) -> Turn:
    """The customer stopped answering: hand the ticket over as the flow says."""
    return _hand_off(flow.on_inactivity, "inactivity", state.node)


def matches(cond: Condition, text: str | None) -> bool:
    said = (text or "")[:MATCH_WINDOW_CHARS]
    if cond.match == "any":
        return True
    if cond.match == "exact":
        folded = said.strip().casefold()
        return any(folded == v.casefold() for v in cond.values)
    assert cond.pattern is not None
    return re.search(cond.pattern, said, re.IGNORECASE) is not None


def node_messages(node: Node) -> list[FlowMessage]:
    """The node's messages, its options listed under the last text (or on their own)."""
    messages = list(node.messages)
    if not node.options:
        return messages
    listing = "\n".join(node.options)
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].text is not None and messages[i].media_url is None:
            messages[i] = FlowMessage(text=f"{messages[i].text}\n{listing}")
            return messages
    return [*messages, FlowMessage(text=listing)]


def _act(flow: ChatFlowDefinition, node: Node, index: int, cond: Condition) -> Turn:
    reply = [FlowMessage(text=cond.reply)] if cond.reply else []
    step = {"node": node.id, "condition": index, "action": cond.action.type}
    action = cond.action
    if isinstance(action, GoTo):
        target = flow.node(action.node)
        assert target is not None  # checked when the flow was saved
        return Turn(
            messages=reply + node_messages(target),
            state=BotState(node=target.id),
            steps=[Step("bot_step", {**step, "to": target.id})],
        )
    if isinstance(action, MoveToQueue):
        ending = Ending("bot_action", target=HandOff(queue_id=action.queue_id))
    elif isinstance(action, AssignToUser):
        ending = Ending("bot_action", target=HandOff(user_id=action.user_id))
    else:
        assert isinstance(action, Close)
        ending = Ending("bot_action", close=True)
    return Turn(messages=reply, ending=ending, steps=[Step("bot_step", step)])


def _not_understood(flow: ChatFlowDefinition, node: Node, state: BotState) -> Turn:
    retries = state.retries + 1
    if retries > flow.max_retries:
        return _hand_off(flow.on_max_retries, "max_retries", node.id)
    back = node
    if flow.not_understood.return_to == "start":
        back = flow.node(flow.start) or node
    return Turn(
        messages=[FlowMessage(text=flow.not_understood.message), *node_messages(back)],
        state=BotState(node=back.id, retries=retries),
        steps=[Step("bot_not_understood", {"node": node.id, "retries": retries, "to": back.id})],
    )


def _hand_off(target: HandOff, reason: str, node: str) -> Turn:
    messages = [FlowMessage(text=target.message)] if target.message else []
    return Turn(
        messages=messages,
        ending=Ending(reason, target=target),
        steps=[Step("bot_gave_up", {"node": node, "reason": reason})],
    )
