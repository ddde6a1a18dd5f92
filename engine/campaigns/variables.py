"""Campaign variables: `{{name}}` placeholders in message text, checked at save, filled at send."""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_BODY_CHARS = 4096
# Filled per contact when a message is sent; `protocol` is the ticket the message lands on.
KNOWN_VARIABLES = ("name", "first_name", "phone", "email", "protocol")
# `{{ name }}`, or with a fallback for contacts without one: `{{first_name|there}}`.
_VARIABLE = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|([^{}]*))?\}\}")


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


def no_nul(value: str) -> str:
    """`value` unchanged, or ValueError: PostgreSQL text cannot hold NUL."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value
