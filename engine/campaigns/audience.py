"""Who a campaign is sent to: contacts carrying some tags, a list of contacts, or a CSV import."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_BIGINT = 9_223_372_036_854_775_807
MAX_TAGS = 50
MAX_CONTACT_IDS = 10_000

Id = Annotated[int, Field(ge=1, le=MAX_BIGINT)]


def _unique(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


class Audience(BaseModel):
    """Exactly one of: `tag_ids` (contacts with any of them), `contact_ids`, `csv_import_id`.

    Resolved to contacts once, when the campaign starts (engine.store.campaigns.freeze_audience).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag_ids: (
        Annotated[list[Id], Field(min_length=1, max_length=MAX_TAGS), AfterValidator(_unique)]
        | None
    ) = None
    contact_ids: (
        Annotated[
            list[Id], Field(min_length=1, max_length=MAX_CONTACT_IDS), AfterValidator(_unique)
        ]
        | None
    ) = None
    csv_import_id: Id | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Audience:
        given = [v for v in (self.tag_ids, self.contact_ids, self.csv_import_id) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of tag_ids, contact_ids or csv_import_id")
        return self
