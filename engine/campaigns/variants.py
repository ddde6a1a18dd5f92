"""Message variants: text with `{{variables}}` and media, checked at save, rendered at send."""

from __future__ import annotations

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

from engine.campaigns.templates import WhatsAppTemplate
from engine.campaigns.variables import (
    MAX_BODY_CHARS,
    check_variables,
    no_nul,
    render,
)

MAX_VARIANTS = 3
MediaType = Literal["image", "video", "audio", "document"]


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
    AfterValidator(no_nul),
    AfterValidator(check_variables),
]
MediaUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_http_url)
]


class Variant(BaseModel):
    """One version of the campaign message; each contact gets one variant at random.

    A blank body is no variant: the body is stripped and must keep at least one character.
    On WhatsApp a contact whose last message is over 24 hours old (or who never wrote) gets
    `template` instead of the body, when the variant has one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: Body
    media_url: MediaUrl | None = None
    media_type: MediaType | None = None
    # WhatsApp only: sent instead of the text to contacts outside the 24-hour window.
    template: WhatsAppTemplate | None = None

    @model_validator(mode="after")
    def _media_type_needs_url(self) -> Variant:
        if self.media_type is not None and self.media_url is None:
            raise ValueError("media_type needs media_url")
        return self

    def render(self, values: Mapping[str, str]) -> str:
        return render(self.body, values)


Variants = Annotated[list[Variant], Field(min_length=1, max_length=MAX_VARIANTS)]
