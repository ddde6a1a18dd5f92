"""Chat-flow definitions: the JSON an admin saves, validated as a whole before it is stored.

Errors name the node by its id (`nodes[menu].conditions.0.action.node`), never by position
alone, so an admin can find what to fix in a flow of many nodes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    model_validator,
)

from engine.automation.templates import validate_template
from engine.errors import EngineError
from engine.phone import normalize_phone

MAX_NODES = 200
MAX_PATTERN_CHARS = 200
# Conditions and auto-replies look at the start of a message only: patterns stay cheap.
MATCH_WINDOW_CHARS = 1000


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+\S*$", value):
        raise ValueError("must be an http(s) URL")
    return value


def _e164(value: str) -> str:
    phone = normalize_phone(value)
    if phone is None:
        raise ValueError("must be a phone number in international format, e.g. +5511987654321")
    return phone


NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TemplateText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4096),
    AfterValidator(_no_nul),
    AfterValidator(validate_template),
]
Keyword = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_nul),
]
Pattern = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS),
    AfterValidator(_no_nul),
    AfterValidator(_compiles),
]
MediaUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_http_url)]
MediaKind = Literal["image", "video", "audio", "document"]
RowId = Annotated[int, Field(ge=1, le=9_223_372_036_854_775_807)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FlowMessage(_Strict):
    """One message the bot sends: text, media, or media with the text as caption."""

    text: TemplateText | None = None
    media_url: MediaUrl | None = None
    media_type: MediaKind | None = None

    @model_validator(mode="after")
    def _something(self) -> FlowMessage:
        if self.text is None and self.media_url is None:
            raise ValueError("give text or media_url")
        if self.media_type is not None and self.media_url is None:
            raise ValueError("media_type needs media_url")
        return self


class GoTo(_Strict):
    type: Literal["go_to"]
    node: NodeId


class MoveToQueue(_Strict):
    type: Literal["move_to_queue"]
    queue_id: RowId


class AssignToUser(_Strict):
    type: Literal["assign_to_user"]
    user_id: RowId


class Close(_Strict):
    type: Literal["close"]


Action = Annotated[GoTo | MoveToQueue | AssignToUser | Close, Field(discriminator="type")]


class Condition(_Strict):
    """When an answer matches, optionally reply, then act.

    `any` matches every answer; `exact` an answer equal to one of `values` (ignoring case
    and surrounding spaces); `regex` an answer `pattern` finds (ignoring case).
    """

    match: Literal["any", "exact", "regex"]
    values: Annotated[list[Keyword], Field(max_length=50)] = []
    pattern: Pattern | None = None
    reply: TemplateText | None = None
    action: Action

    @model_validator(mode="after")
    def _complete(self) -> Condition:
        if self.match == "exact" and not self.values:
            raise ValueError("an exact condition needs values")
        if self.match == "regex" and self.pattern is None:
            raise ValueError("a regex condition needs pattern")
        return self


class Node(_Strict):
    id: NodeId
    messages: Annotated[list[FlowMessage], Field(max_length=10)] = []
    # Shown under the node's last text, one per line ("1 - Sales").
    options: Annotated[list[Keyword], Field(max_length=20)] = []
    conditions: Annotated[list[Condition], Field(max_length=50)] = []


class HandOff(_Strict):
    """Where a ticket goes when the bot gives up: a user, a queue, else the default queue."""

    queue_id: RowId | None = None
    user_id: RowId | None = None
    message: TemplateText | None = None


class NotUnderstood(_Strict):
    message: TemplateText = "Sorry, I did not understand."
    return_to: Literal["current", "start"] = "current"


class ChatFlowDefinition(_Strict):
    start: NodeId
    welcome: TemplateText | None = None
    nodes: Annotated[list[Node], Field(min_length=1, max_length=MAX_NODES)]
    not_understood: NotUnderstood = NotUnderstood()
    max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    on_max_retries: HandOff = HandOff()
    inactivity_timeout_s: Annotated[int, Field(ge=30, le=7 * 24 * 3600)] | None = None
    on_inactivity: HandOff = HandOff()
    close_keywords: Annotated[list[Keyword], Field(max_length=20)] = []
    close_message: TemplateText | None = None
    test_phone: Annotated[str, AfterValidator(_e164)] | None = None

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def applies_to(self, phone: str | None) -> bool:
        """A flow with a test phone runs only for that contact."""
        return self.test_phone is None or phone == self.test_phone


class FlowProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    message: str


class InvalidFlowError(EngineError):
    """A definition that cannot be saved; `problems` name each field, nodes by their id."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def parse_flow(data: Mapping[str, JsonValue] | JsonValue) -> ChatFlowDefinition:
    """The definition, or InvalidFlowError listing every problem found."""
    try:
        flow = ChatFlowDefinition.model_validate(data)
    except ValidationError as exc:
        raise InvalidFlowError(_problems_of(exc, data)) from None
    problems = graph_problems(flow)
    if problems:
        raise InvalidFlowError(problems)
    return flow


def load_flow(data: JsonValue) -> ChatFlowDefinition:
    """A stored definition (validated when saved): no graph checks on the hot path."""
    return ChatFlowDefinition.model_validate(data)


def graph_problems(flow: ChatFlowDefinition) -> list[FlowProblem]:
    """Duplicate ids, a missing start, targets that name no node, nodes never reached."""
    problems: list[FlowProblem] = []
    seen: set[str] = set()
    for node in flow.nodes:
        if node.id in seen:
            problems.append(FlowProblem(field=f"nodes[{node.id}].id", message="duplicate node id"))
        seen.add(node.id)
    if flow.start not in seen:
        problems.append(FlowProblem(field="start", message=f"no node '{flow.start}'"))
    for node in flow.nodes:
        for i, cond in enumerate(node.conditions):
            if isinstance(cond.action, GoTo) and cond.action.node not in seen:
                problems.append(
                    FlowProblem(
                        field=f"nodes[{node.id}].conditions.{i}.action.node",
                        message=f"no node '{cond.action.node}'",
                    )
                )
    if problems:
        return problems
    reached = _reachable(flow)
    for node in flow.nodes:
        if node.id not in reached:
            problems.append(
                FlowProblem(
                    field=f"nodes[{node.id}]",
                    message=f"unreachable from the start node '{flow.start}'",
                )
            )
    return problems


def _reachable(flow: ChatFlowDefinition) -> set[str]:
    by_id = {n.id: n for n in flow.nodes}
    reached = {flow.start}
    todo = deque([flow.start])
    while todo:
        for cond in by_id[todo.popleft()].conditions:
            if isinstance(cond.action, GoTo) and cond.action.node not in reached:
                reached.add(cond.action.node)
                todo.append(cond.action.node)
    return reached


def _problems_of(exc: ValidationError, data: object) -> list[FlowProblem]:
    """pydantic's errors, with `nodes.3` written as `nodes[<id of node 3>]` where known."""
    nodes = data.get("nodes") if isinstance(data, Mapping) else None
    out: list[FlowProblem] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if len(loc) >= 2 and loc[0] == "nodes" and loc[1].isdigit() and isinstance(nodes, list):
            index = int(loc[1])
            node = nodes[index] if index < len(nodes) else None
            node_id = node.get("id") if isinstance(node, dict) else None
            loc[:2] = [f"nodes[{node_id}]" if isinstance(node_id, str) else f"nodes[{index}]"]
        loc = [part for part in loc if not _is_union_tag(part)]
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(FlowProblem(field=".".join(loc) or "definition", message=message))
    return out


def _is_union_tag(part: str) -> bool:
    """pydantic names the union member it tried (`go_to`, `function-after[...]`)."""
    return part in ("go_to", "move_to_queue", "assign_to_user", "close") or part.startswith(
        ("function-", "constrained-str")
    )


def references(flow: ChatFlowDefinition) -> list[tuple[str, str, int]]:
    """(field, table, id) of every queue and user the flow names, to check they exist."""
    found: list[tuple[str, str, int]] = []
    for name in ("on_max_retries", "on_inactivity"):
        target: HandOff = getattr(flow, name)
        if target.queue_id is not None:
            found.append((f"{name}.queue_id", "queues", target.queue_id))
        if target.user_id is not None:
            found.append((f"{name}.user_id", "users", target.user_id))
    for node in flow.nodes:
        for i, cond in enumerate(node.conditions):
            where = f"nodes[{node.id}].conditions.{i}.action"
            if isinstance(cond.action, MoveToQueue):
                found.append((f"{where}.queue_id", "queues", cond.action.queue_id))
            elif isinstance(cond.action, AssignToUser):
                found.append((f"{where}.user_id", "users", cond.action.user_id))
    return found
