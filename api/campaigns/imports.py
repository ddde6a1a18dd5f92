"""CSV imports: a list of phone numbers with names becomes contacts a campaign can target."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from starlette.requests import Request

from api.bodies import read_capped
from api.campaigns.common import router
from api.campaigns.models import ImportJson, ImportQuery, ImportReadQuery, ImportView
from api.errors import ApiError, ErrorDetail, invalid_request
from api.framework import Call, NoBody
from api.rbac import Permission
from engine.campaigns import CsvImportError, parse_csv
from engine.campaigns.csv_import import MAX_CSV_BYTES
from engine.store import campaigns as store

_PATH = "/api/v1/campaigns/imports"
# JSON escaping can grow a 10 MB file; the CSV text itself is held to MAX_CSV_BYTES.
MAX_REQUEST_BYTES = 2 * MAX_CSV_BYTES
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")
_TOO_LARGE = ApiError(413, "payload_too_large", "The CSV file is larger than 10 MB.")


@router.post(
    _PATH,
    Permission.CAMPAIGNS_MANAGE,
    query=ImportQuery,
    response=ImportView,
    status=201,
    summary="Import contacts from a CSV file",
)
async def import_contacts(call: Call[NoBody, ImportQuery]) -> ImportView:
    """The body is the CSV file (`Content-Type: text/csv`, UTF-8 unless a charset is given)
    or JSON `{"csv": "<file text>"}`. Its first line is a header naming a `phone` column and
    optionally `name` (any case, other columns ignored; `,` `;` or tab separated). Valid rows
    become contacts (an existing number keeps its contact), with an identity on the channel
    when it is WhatsApp or SMS; bad rows are listed by line number with the reason and left
    out. Up to 10 MB (413) and 200 000 rows (422). Target the import with
    `audience.csv_import_id`; `filename` is kept with it."""
    tenant_id, channel_id = call.tenant_id, call.query.channel_id
    async with call.tx() as conn:
        channel = await conn.run_sync(
            lambda c: store.get_channel_state(c, tenant_id=tenant_id, channel_id=channel_id)
        )
    if channel is None:
        detail = ErrorDetail(field="channel_id", message=f"no channel {channel_id} in this tenant")
        raise ApiError(
            422, "invalid_request", "Invalid query parameter: channel_id.", details=(detail,)
        )
    raw = await read_capped(call.request, limit=MAX_REQUEST_BYTES, too_large=_TOO_LARGE)
    text = _csv_text(call.request, raw)
    try:
        # Checking 200 000 phone numbers takes seconds of CPU: off the event loop.
        parsed = await asyncio.to_thread(parse_csv, text)
    except CsvImportError as exc:
        raise ApiError(422, "invalid_csv", str(exc)) from None
    async with call.tx() as conn:
        result = await conn.run_sync(
            lambda c: store.insert_import(
                c,
                tenant_id=tenant_id,
                channel_id=channel_id,
                channel_type=channel[0],
                parsed=parsed,
                user_id=call.principal.user_id,
                filename=call.query.filename,
            )
        )
    return ImportView.of(result)


@router.get(
    _PATH + "/{id}",
    Permission.CAMPAIGNS_READ,
    query=ImportReadQuery,
    response=ImportView,
    summary="Get a CSV import",
)
async def get_import(call: Call[NoBody, ImportReadQuery]) -> ImportView:
    """Counts, status and bad rows (line number and reason, by line) of an earlier import."""
    after = call.query.errors_after_line
    async with call.tx() as conn:
        found = await conn.run_sync(
            lambda c: store.get_import(
                c, tenant_id=call.tenant_id, import_id=call.id(), errors_after_line=after
            )
        )
    if found is None:
        raise ApiError(404, "not_found", "Import not found.")
    return ImportView.of(found)


def _csv_text(request: Request, raw: bytes) -> str:
    """The CSV file's text from a text/csv or a JSON body; 413, 415 or 422 otherwise."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    if not raw.strip():
        raise ApiError(
            422, "invalid_csv", 'Send the CSV file as the body (text/csv) or as JSON {"csv": …}.'
        )
    if media_type == "application/json":
        try:
            text = ImportJson.model_validate_json(raw).csv
        except ValidationError as exc:
            raise invalid_request(exc, where="request body") from None
    elif media_type in _CSV_TYPES:
        text = _decode(raw, _charset(params))
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            'Send the CSV file as text/csv, or as application/json {"csv": …}.',
        )
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CSV_BYTES:
        raise _TOO_LARGE
    return text


def _charset(params: str) -> str:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or "utf-8"
    return "utf-8"


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except LookupError:  # unknown, or not a text encoding (base64, rot13, zlib…)
        raise ApiError(
            415, "unsupported_media_type", f"Unknown charset {charset[:40]!r}."
        ) from None
    except UnicodeDecodeError:
        raise ApiError(
            422,
            "invalid_csv",
            f"The CSV file is not {charset} text; save it as UTF-8 or name its charset.",
        ) from None
