"""CSV contact lists for campaigns: parse, validate each row, report bad rows by line number."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from engine.campaigns.errors import CsvImportError
from engine.phone import normalize_phone

MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_CSV_ROWS = 200_000
MAX_NAME_CHARS = 200
_DELIMITERS = (",", ";", "\t")  # spreadsheets in comma-decimal locales export with ';'


class ImportRow(BaseModel):
    """A valid row: its line in the file, the phone in E.164 and the name if any."""

    model_config = ConfigDict(frozen=True)

    line: int
    phone: str
    name: str | None


class RowError(BaseModel):
    """A row left out, and why. The value is not repeated: the line number finds it."""

    model_config = ConfigDict(frozen=True)

    line: int
    reason: str


class _LineReader(Protocol):
    """What csv.reader returns: rows, and the physical line reached (quoted fields may span)."""

    @property
    def line_num(self) -> int: ...

    def __iter__(self) -> Iterator[list[str]]: ...


@dataclass(frozen=True)
class ParsedCsv:
    rows: tuple[ImportRow, ...]
    errors: tuple[RowError, ...]

    @property
    def total_rows(self) -> int:
        return len(self.rows) + len(self.errors)


def parse_csv(text: str) -> ParsedCsv:
    """Valid rows and bad ones of a `phone,name` CSV whose first line is its header.

    Header names are matched case-insensitively; other columns are ignored; blank lines are
    skipped. Raises CsvImportError for a file that cannot be read at all: larger than 10 MB,
    more than 200 000 rows, no header naming a `phone` column, or broken CSV quoting.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CSV_BYTES:
        raise CsvImportError(f"The CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        phone_at, name_at = _columns(next(reader, []))
        return _rows(reader, phone_at, name_at)
    except csv.Error as exc:
        raise CsvImportError(f"Line {reader.line_num}: not valid CSV ({exc}).") from None


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return max(_DELIMITERS, key=header.count)


def _columns(header: list[str]) -> tuple[int, int | None]:
    names = [h.strip().lower() for h in header]
    if "phone" not in names:
        raise CsvImportError(
            "The first line must be a header naming the columns, with at least 'phone' "
            "(e.g. phone,name)."
        )
    return names.index("phone"), names.index("name") if "name" in names else None


def _rows(reader: _LineReader, phone_at: int, name_at: int | None) -> ParsedCsv:
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    last_line = reader.line_num
    for record in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(field.strip() for field in record):
            continue
        if len(rows) + len(errors) >= MAX_CSV_ROWS:
            raise CsvImportError(
                f"The CSV file has more than {MAX_CSV_ROWS} rows; split it into smaller files."
            )
        outcome = _row(record, line, phone_at, name_at, seen)
        if isinstance(outcome, RowError):
            errors.append(outcome)
        else:
            seen[outcome.phone] = line
            rows.append(outcome)
    return ParsedCsv(rows=tuple(rows), errors=tuple(errors))


def _row(
    record: list[str], line: int, phone_at: int, name_at: int | None, seen: dict[str, int]
) -> ImportRow | RowError:
    raw = record[phone_at].strip() if phone_at < len(record) else ""
    if not raw:
        return RowError(line=line, reason="missing phone")
    phone = normalize_phone(raw)
    if phone is None:
        return RowError(line=line, reason="invalid phone number")
    if phone in seen:
        return RowError(line=line, reason=f"duplicate phone (same number as line {seen[phone]})")
    name = (
        record[name_at].strip() if name_at is not None and name_at < len(record) else ""
    ) or None
    if name is not None and len(name) > MAX_NAME_CHARS:
        return RowError(line=line, reason=f"name longer than {MAX_NAME_CHARS} characters")
    if name is not None and ("\x00" in name or not _encodable(name)):
        return RowError(line=line, reason="name contains characters that are not text")
    return ImportRow(line=line, phone=phone, name=name)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
