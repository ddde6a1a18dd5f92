"""Message variants: text with `{{variables}}` and media, checked at save, rendered at send."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_BODY_CHARS = 4096
MAX_VARIANTS = 3
# Filled per contact when a message is sent; `protocol` is the ticket the message lands on.
KNOWN_VARIABLES = ("name", "first_name", "phone", "email", "protocol")
# `{{ name }}`, or with a fallback for contacts without one: `{{first_name|there}}`.
_VARIABLE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|([^{}]*))?\}\}")

MediaType = Literal["image", "video", "audio", "document"]


def variables_in(body: str) -> list[str]:
    """The variable names `body` uses, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in _VARIABLE.finditer(body)))


def check_variables(body: str) -> str:
    """`body` unchanged, or ValueError naming the first unknown variable and the known ones."""
    for name in variables_in(body):
        if name not in KNOWN_VARIABLES:
            known = ", ".join("{{" + k + "}}" for k in KNOWN_VARIABLES)
            shown = "{{" + name + "}}"
            raise ValueError(f"unknown variable {shown}; known variables are {known}")
    return body


def render(body: str, values: Mapping[str, str]) -> str:
    """`body` with each variable replaced by its value, else its fallback, else nothing.

    Cut to MAX_BODY_CHARS: a long name must not make a valid variant unsendable.
    """

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1), "").strip()
        return value or (match.group(2) or "").strip()

    return _VARIABLE.sub(one, body)[:MAX_BODY_CHARS]


def variable_values(
    *, name: str | None, phone: str | None, email: str | None, protocol: str | None
) -> dict[str, str]:
    """The values of KNOWN_VARIABLES for one contact (empty where unknown)."""
    full = (name or "").strip()
    return {
        "name": full,
        "first_name": full.split()[0] if full else "",
        "phone": phone or "",
        "email": email or "",
        "protocol": protocol or "",
    }


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


Body = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BODY_CHARS),
    AfterValidator(_no_nul),
    AfterValidator(check_variables),
]
MediaUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_http_url)
]


class Variant(BaseModel):
    """One version of the campaign message; each contact gets one variant at random.

    A blank body is no variant: the body is stripped and must keep at least one character.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: Body
    media_url: MediaUrl | None = None
    media_type: MediaType | None = None

    @model_validator(mode="after")
    def _media_type_needs_url(self) -> Variant:
        if self.media_type is not None and self.media_url is None:
            raise ValueError("media_type needs media_url")
        return self

    def render(self, values: Mapping[str, str]) -> str:
        return render(self.body, values)


Variants = Annotated[list[Variant], Field(min_length=1, max_length=MAX_VARIANTS)]
