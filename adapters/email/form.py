"""Form bodies (urlencoded or multipart/form-data) as ordered parts with their raw bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Provider forms carry a few dozen fields; a cap keeps a hostile body from costing much.
_MAX_FIELDS = 1000


class FormError(ValueError):
    """The body is not a well-formed form of the declared content type."""


@dataclass(frozen=True)
class Part:
    """One form field; `filename` is set for file uploads (attachments)."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Form:
    parts: tuple[Part, ...]

    def fields(self) -> dict[str, bytes]:
        """Non-file fields by lower-cased name; the first occurrence wins.

        A name already in lower case beats its capitalised twin: Mailgun posts both its own
        parsed `subject` and the raw MIME `Subject` header, and documents the former.
        """
        found: dict[str, bytes] = {}
        for part in self.parts:
            if part.filename is None and part.name.islower():
                found.setdefault(part.name, part.data)
        for part in self.parts:
            if part.filename is None:
                found.setdefault(part.name.lower(), part.data)
        return found

    def files(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.filename is not None)

    def part(self, name: str) -> Part | None:
        return next((part for part in self.parts if part.name == name), None)


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def parse_form(body: bytes, content_type: str) -> Form:
    """Parse `body` as the form `content_type` declares. Raises FormError."""
    kind = media_type(content_type)
    if kind == "application/x-www-form-urlencoded":
        return _urlencoded(body)
    if kind == "multipart/form-data":
        return _multipart(body, content_type)
    raise FormError(f"content type {kind or '(none)'} is not a form")


def _urlencoded(body: bytes) -> Form:
    # latin-1 both ways maps each byte to itself, so values come back as the raw bytes the
    # provider percent-encoded and are decoded later with the charset the provider declares.
    try:
        pairs = parse_qsl(
            body.decode("latin-1"),
            keep_blank_values=True,
            max_num_fields=_MAX_FIELDS,
            encoding="latin-1",
        )
    except ValueError:
        raise FormError("too many form fields") from None
    return Form(
        tuple(
            Part(name.encode("latin-1").decode("utf-8", "replace"), value.encode("latin-1"))
            for name, value in pairs
        )
    )


@dataclass
class _Collector:
    """Gathers python-multipart's streaming callbacks into whole parts."""

    parts: list[Part] = field(default_factory=list)
    headers: dict[str, bytes] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self.header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_part_data": lambda d, s, e: self.data.extend(d[s:e]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.headers.clear()
        self.data.clear()

    def _header_end(self) -> None:
        self.headers[self.header_name.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def _part_end(self) -> None:
        if len(self.parts) >= _MAX_FIELDS:
            raise FormError("too many form fields")
        # Header bytes go through latin-1 so that UTF-8 names and filenames, which mail
        # providers send raw (RFC 7578 §4.2), come back out byte for byte.
        disposition = self.headers.get("content-disposition", b"").decode("latin-1")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise FormError("multipart part without a name")
        filename = options.get(b"filename")
        content_type = self.headers.get("content-type")
        self.parts.append(
            Part(
                name=options[b"name"].decode("utf-8", "replace"),
                data=bytes(self.data),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=content_type.decode("utf-8", "replace") if content_type else None,
            )
        )

    def _end(self) -> None:
        self.ended = True


def _multipart(body: bytes, content_type: str) -> Form:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise FormError("multipart/form-data without a boundary")
    collector = _Collector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise FormError(f"multipart body does not parse: {exc}") from None
    if not collector.ended:
        raise FormError("multipart body ends before its closing boundary")
    return Form(tuple(collector.parts))
