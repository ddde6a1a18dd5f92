"""Mail vocabulary shared by both providers: Message-IDs, addresses, dates, HTML to text."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.headerregistry import Address, AddressHeader
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

from engine.events import MessageType

# provider_message_id is capped at 200 characters; longer ids are hashed so that every
# place that stores or compares a Message-ID (ours, In-Reply-To, References) agrees.
_MAX_ID_CHARS = 200
_BRACKETED = re.compile(r"<([^<>\s]+)>")
SYNTHETIC_PREFIX = "sha256:"


def normalise_message_id(raw: str) -> str | None:
    """`<abc@host>` → `abc@host`; None when there is no id in `raw`."""
    match = _BRACKETED.search(raw)
    value = match.group(1) if match else raw.strip().strip("<>").strip()
    if not value or any(c.isspace() for c in value):
        return None
    if len(value) > _MAX_ID_CHARS:
        return SYNTHETIC_PREFIX + hashlib.sha256(value.encode()).hexdigest()
    return value


def message_ids(raw: str | None) -> tuple[str, ...]:
    """Every Message-ID of a References header, in order, without duplicates."""
    if not raw:
        return ()
    tokens = _BRACKETED.findall(raw) or raw.replace(",", " ").split()
    ids = (normalise_message_id(token) for token in tokens)
    return tuple(dict.fromkeys(i for i in ids if i))


def synthetic_id(*parts: str | None) -> str:
    """A stable stand-in for a missing Message-ID, from fields every redelivery repeats."""
    digest = hashlib.sha256("\x00".join(p or "" for p in parts).encode()).hexdigest()
    return SYNTHETIC_PREFIX + digest


def addresses(raw: str | None) -> tuple[Address, ...]:
    """The mailboxes of an address header value (RFC 2047 names decoded); () when unreadable."""
    if not raw or "\n" in raw or "\r" in raw:
        return ()
    try:
        header = default_policy.header_factory("to", raw)
    except (ValueError, IndexError, TypeError):
        return ()
    if not isinstance(header, AddressHeader):
        return ()
    return tuple(a for a in header.addresses if a.username and a.domain)


def bare(address: Address) -> str:
    return address.addr_spec.lower()


def parse_date(raw: str | None) -> datetime | None:
    """A Date header as an aware UTC datetime; None when absent or unreadable."""
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 5322 "-0000" means "zone unknown"; UTC is the honest reading of that.
    aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def media_kind(content_type: str | None) -> MessageType:
    family = (content_type or "").partition("/")[0].strip().lower()
    kinds = {"image": MessageType.IMAGE, "audio": MessageType.AUDIO, "video": MessageType.VIDEO}
    return kinds.get(family, MessageType.DOCUMENT)


_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
)
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template"})


class _TextExtractor(HTMLParser):
    """Keeps text nodes only; nothing from the HTML is ever interpreted or rendered."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """A crude plain-text reading of an HTML body: tags dropped, entities decoded."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
