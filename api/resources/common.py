"""What the resource routers share: clean text types, id lists, cursor pages."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from api.errors import ApiError, ErrorDetail
from engine.queries.common import IdView

MAX_BIGINT = 9_223_372_036_854_775_807
MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_IDS = 500
_CURSOR_PREFIX = "id:"


def clean_text(value: str) -> str:
    """PostgreSQL refuses NUL and lone surrogates would fail encoding: a 422, never a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Clean = AfterValidator(clean_text)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out but not null")
    return value


Strip = BeforeValidator(_strip)
# On a PATCH field that may be omitted but never cleared: `Annotated[Name | None, NotNull] = None`.
NotNull = BeforeValidator(_reject_null)
Name = Annotated[str, Strip, Field(min_length=1, max_length=100), Clean]
LongName = Annotated[str, Strip, Field(min_length=1, max_length=200), Clean]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$"), AfterValidator(str.lower)]
Email = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
    Field(max_length=320, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"),
    Clean,
]
RowId = Annotated[int, Field(ge=1, le=MAX_BIGINT)]


def _unique(values: list[int]) -> list[int]:
    # Refused rather than folded: error details name positions in the list as it was sent.
    if len(set(values)) != len(values):
        raise ValueError("must not name an id twice")
    return values


IdList = Annotated[list[RowId], Field(max_length=MAX_IDS), AfterValidator(_unique)]


class Frozen(BaseModel):
    """Base of request and response models: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def changes_of(body: BaseModel) -> dict[str, object]:
    """The fields a PATCH body actually sent (an explicit null included), by name."""
    return dict(body.model_dump(include=set(body.model_fields_set)))


def encode_cursor(last_id: int) -> str:
    """The opaque position handed to clients: the last id of the page."""
    raw = f"{_CURSOR_PREFIX}{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor returned by this API") from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 19:
        raise ValueError("not a cursor returned by this API")
    return int(digits)


# Clients see an opaque string (the `next_cursor` of the previous page); handlers get the id.
Cursor = Annotated[
    Annotated[int, Field(ge=1, le=MAX_BIGINT)] | None,
    BeforeValidator(_decode_cursor),
    WithJsonSchema({"type": "string", "description": "next_cursor of the previous page"}),
]


class ListQuery(Frozen):
    """`limit` and `cursor`, the paging every list endpoint takes."""

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: Cursor = None


T = TypeVar("T", bound=IdView)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next, None at the end."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None


def page_of(model: type[Page[T]], rows: Sequence[T], limit: int) -> Page[T]:
    """A `model` page from up to `limit + 1` rows fetched in id order (the extra one: "more")."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return model(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def unknown_ids(field: str, sent: Sequence[int], known: set[int], subject: str) -> ApiError | None:
    """422 naming each id of `sent` that is not among `known` (e.g. `user_ids.2`), or None."""
    details = tuple(
        ErrorDetail(field=f"{field}.{i}", message=f"no {subject} {value} in this tenant")
        for i, value in enumerate(sent)
        if value not in known
    )
    if not details:
        return None
    names = ", ".join(d.field for d in details)
    return ApiError(422, "invalid_request", f"Invalid request body: {names}.", details=details)


V = TypeVar("V")


def found(value: V | None, subject: str) -> V:
    """`value`, or the 404 a missing (or other tenant's) row gets."""
    if value is None:
        raise ApiError(404, "not_found", f"{subject} not found.")
    return value
