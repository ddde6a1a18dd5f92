"""WhatsApp templates of campaign variants: what goes out to contacts outside the 24-hour window.

WhatsApp only lets a business start a conversation with a template Meta approved; free-form
text is allowed for 24 hours after the contact's last message. A variant may name such a
template, with its body parameters written with the campaign's `{{variables}}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from engine.campaigns.variables import check_variables, no_nul, render

MAX_TEMPLATE_PARAMS = 20
MAX_PARAM_CHARS = 1024  # a body parameter longer than this is refused by the Cloud API

# Meta's template names: lowercase letters, digits and underscores.
_NAME = re.compile(r"[a-z0-9_]{1,512}")
# Meta's language codes: `pt_BR`, `en_US`, `es_AR`, or a bare language such as `fil` or `de`.
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be the template's name as approved by Meta: 1 to 512 lowercase letters, "
            "digits or underscores (e.g. order_update)"
        )
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError("must be a WhatsApp language code such as pt_BR, en_US or de")
    return value


TemplateName = Annotated[str, AfterValidator(_name)]
TemplateLanguage = Annotated[str, AfterValidator(_language)]


TemplateParam = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PARAM_CHARS),
    AfterValidator(no_nul),
    AfterValidator(check_variables),
]


class WhatsAppTemplate(BaseModel):
    """An approved WhatsApp template and its body parameters, in order ({{1}}, {{2}}…).

    Each parameter is text with the campaign's variables, e.g. `["{{first_name}}",
    "{{protocol}}"]`, filled per contact when the message is sent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: TemplateName
    language: TemplateLanguage
    params: Annotated[list[TemplateParam], Field(max_length=MAX_TEMPLATE_PARAMS)] = []

    def render_params(self, values: Mapping[str, str]) -> list[str] | None:
        """The parameters for one contact, or None when one comes out empty (WhatsApp refuses
        an empty parameter: a variable the contact has no value for, without a fallback)."""
        rendered = [render(p, values).strip()[:MAX_PARAM_CHARS] for p in self.params]
        return None if any(not p for p in rendered) else rendered
