"""Template variables of automated and canned messages: checked at save, filled at send.

The `{{variable}}` syntax (with an optional fallback, `{{first_name|there}}`) is the one
campaigns use; only the set of variables differs, because these messages go out on a ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from engine.campaigns.variables import render as render_variables
from engine.campaigns.variables import variables_in

KNOWN_VARIABLES = ("name", "first_name", "protocol", "greeting", "agent", "queue")


class UnknownVariableError(ValueError):
    """A template names a variable the engine cannot fill (a ValueError: pydantic reports it)."""

    def __init__(self, variable: str) -> None:
        known = ", ".join("{{" + k + "}}" for k in KNOWN_VARIABLES)
        super().__init__(f"unknown variable {{{{{variable}}}}}; known variables are {known}")
        self.variable = variable


def validate_template(text: str) -> str:
    """`text` unchanged, or UnknownVariableError naming the first unknown variable."""
    for name in variables_in(text):
        if name not in KNOWN_VARIABLES:
            raise UnknownVariableError(name)
    return text


class TemplateContext(BaseModel):
    """What a message on one ticket can say about it; None where unknown."""

    model_config = ConfigDict(frozen=True)

    contact_name: str | None = None
    protocol: str | None = None
    agent: str | None = None
    queue: str | None = None
    time_zone: str = "UTC"
    now: datetime = Field(default_factory=lambda: datetime.now(UTC))


def greeting(now: datetime, time_zone: str) -> str:
    """Good morning (05–12h), afternoon (12–18h) or evening, on the tenant's clock."""
    try:
        hour = now.astimezone(ZoneInfo(time_zone)).hour
    except (ZoneInfoNotFoundError, ValueError):
        hour = now.astimezone(UTC).hour
    if 5 <= hour < 12:
        return "Good morning"
    if 12 <= hour < 18:
        return "Good afternoon"
    return "Good evening"


def values_of(ctx: TemplateContext) -> dict[str, str]:
    full = (ctx.contact_name or "").strip()
    return {
        "name": full,
        "first_name": full.split()[0] if full else "",
        "protocol": ctx.protocol or "",
        "greeting": greeting(ctx.now, ctx.time_zone),
        "agent": ctx.agent or "",
        "queue": ctx.queue or "",
    }


def render(text: str, ctx: TemplateContext) -> str:
    """`text` with each variable filled from `ctx` (its fallback, or nothing, when unknown)."""
    return render_variables(text, values_of(ctx))
