"""Every per-tenant setting: its key, type, default and meaning, in one table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from engine.automation.templates import validate_template

log = logging.getLogger(__name__)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# "24:00" ends a day; intervals never cross midnight (split them into two days instead).
ClockTime = Annotated[StrictStr, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


def valid_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone this system knows (e.g. America/Sao_Paulo)."""
    if not name or len(name) > 64 or "\x00" in name:
        raise ValueError("must be an IANA time zone such as America/Sao_Paulo")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as America/Sao_Paulo") from None
    return name


TimeZone = Annotated[StrictStr, AfterValidator(valid_time_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class OpenInterval(_Strict):
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _ordered(self) -> OpenInterval:
        if self.start >= self.end:  # zero-padded HH:MM sorts as text
            raise ValueError("start must be before end")
        return self


class BusinessHours(_Strict):
    """When the tenant is open: per weekday, non-overlapping intervals in `time_zone`.

    A weekday left out (or with no intervals) is closed all day; one interval 00:00-24:00 is
    open all day; at most two intervals a day. Holidays (local dates) are closed all day.
    """

    time_zone: TimeZone
    week: dict[Weekday, Annotated[list[OpenInterval], Field(max_length=2)]]
    # Not strict: dates arrive as "YYYY-MM-DD" text from JSON bodies and stored settings.
    # Left out of the output when empty, so hours saved without holidays read back unchanged.
    holidays: list[Annotated[date, Strict(False)]] = Field(
        default_factory=list, max_length=366, exclude_if=lambda days: not days
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> BusinessHours:
        for day, intervals in self.week.items():
            ordered = sorted(intervals, key=lambda i: i.start)
            for before, after in pairwise(ordered):
                if after.start < before.end:
                    raise ValueError(f"{day}: intervals overlap")
        return self


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Message = Annotated[StrictStr, Field(min_length=1, max_length=4096), AfterValidator(_clean)]
Hours = Annotated[StrictInt, Field(ge=1, le=24 * 365)]
# A channel id, or "default" for every channel without one of its own.
FarewellKey = Annotated[StrictStr, Field(pattern=r"^(default|[1-9][0-9]{0,18})$")]
# Automated messages: an unknown {{variable}} is refused when the setting is saved.
TemplateMessage = Annotated[Message, AfterValidator(validate_template)]
QueueId = Annotated[StrictInt, Field(ge=1, le=9_223_372_036_854_775_807)]


@dataclass(frozen=True)
class Setting:
    """One key: values are validated (strictly: "true" is not a bool) by `adapter`."""

    key: str
    adapter: TypeAdapter[Any]
    default: Any
    description: str

    def validate(self, value: JsonValue) -> Any:
        """The typed value; pydantic ValidationError when it does not fit."""
        return self.adapter.validate_python(value)

    def to_json(self, value: Any) -> JsonValue:
        dumped: JsonValue = self.adapter.dump_python(value, mode="json")
        return dumped


def _setting(key: str, type_: Any, default: Any, description: str) -> Setting:
    return Setting(key, TypeAdapter(type_), default, description)


REGISTRY: dict[str, Setting] = {
    s.key: s
    for s in (
        _setting(
            "agents_see_unqueued",
            StrictBool,
            True,
            "Agents see pending tickets that are in no queue.",
        ),
        _setting(
            "hide_bot_tickets_from_agents",
            StrictBool,
            False,
            "Agents do not see tickets a chat-flow bot is still handling.",
        ),
        _setting(
            "auto_close_after_h",
            Hours | None,
            None,
            "Close an open ticket after this many hours without messages; null: never.",
        ),
        _setting(
            "out_of_hours_message",
            TemplateMessage | None,
            None,
            "Sent once per ticket and closed period to a customer who writes outside business "
            "hours; may use {{variables}}; null: none.",
        ),
        _setting(
            "default_queue_id",
            QueueId | None,
            None,
            "Queue a bot hands a ticket to when its own target queue or user no longer exists.",
        ),
        _setting(
            "signature_on_reply",
            StrictBool,
            False,
            "Prefix an agent's replies with their name.",
        ),
        _setting(
            "business_hours",
            BusinessHours | None,
            None,
            "Opening hours per weekday in a time zone; null: always open.",
        ),
        _setting(
            "farewell_messages",
            dict[FarewellKey, Message],
            {},
            "Sent as a ticket closes (by an agent without a farewell of their own, or for "
            'inactivity), by channel id or "default": {"default": "Thanks!", "12": "Obrigado!"}.',
        ),
        _setting(
            "retention_days",
            Annotated[StrictInt, Field(ge=1, le=3650)] | None,
            None,
            "Messages older than this many days are deleted or anonymised; null: keep forever.",
        ),
        _setting(
            "retention_mode",
            Literal["delete", "anonymise"],
            "anonymise",
            "What retention does to old messages: delete them, or keep them without content.",
        ),
    )
}


def effective(key: str, stored: JsonValue | None, *, present: bool) -> Any:
    """The value in force for `key`: the stored one when it still fits the type, else default.

    A stored value that no longer fits (the type changed since) is logged and ignored rather
    than breaking every reader.
    """
    setting = REGISTRY[key]
    if not present:
        return setting.default
    try:
        return setting.validate(stored)
    except ValidationError:
        log.warning("stored setting no longer valid; using default", extra={"key": key})
        return setting.default
