"""The media download stage on the real database: a fake source, the WhatsApp adapter against
the sandbox, and e-mail attachments cut from the inbox body; files in a local store."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from adapters.email import EmailAdapter
from adapters.sandbox import Sandbox
from adapters.sandbox.state import Fault, media_bytes
from adapters.whatsapp import ADAPTER as WHATSAPP
from engine.db import system_tx
from engine.errors import (
    ProviderRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
    RetryableError,
)
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    InboundMessage,
    Media,
    MediaContent,
    WebhookRequest,
)
from engine.media import DEFAULT_ALLOWED_TYPES, MediaRejectedError, StorageUnavailableError
from engine.media_storage import LocalMediaStorage
from engine.store.channels import insert_channel
from engine.store.tenants import insert_tenant
from pipelines.media import MediaGoneError, download, email_inbox_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"
MAX_BYTES = 1024
EMAIL_ADDRESS = "support@help.acme.test"


class FakeSource:
    """A provider that hands out `content` (or raises `error`) and counts the calls."""

    def __init__(self, content: MediaContent | None = None, error: Exception | None = None):
        self.content = content or MediaContent(data=JPEG, mime_type="image/jpeg")
        self.error = error
        self.calls: list[str | None] = []

    def fetch_media(self, media: Media, *, channel: ChannelConnection, http: Any) -> MediaContent:
        self.calls.append(media.provider_media_id)
        if self.error is not None:
            raise self.error
        return self.content


class BrokenStorage(LocalMediaStorage):
    def put(self, key: str, data: bytes, *, content_type: str | None) -> str:
        raise StorageUnavailableError("media write failed: No space left on device")


def _element(media_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": "image",
        "mime_type": "image/jpeg",
        "provider_media_id": media_id,
        "url": None,
        "filename": None,
        "caption": "the broken box",
        "sha256": None,
        **extra,
    }


def _channel(db: Engine, type: ChannelType, external_id: str, **config: Any) -> tuple[int, int]:
    """(tenant id, channel id) of a new tenant with one channel."""
    with system_tx(db) as conn:
        tenant_id = insert_tenant(conn, name=f"Media {uuid.uuid4().hex[:6]}")
        channel_id = insert_channel(
            conn,
            tenant_id=tenant_id,
            type=type,
            name=type.value,
            external_id=external_id,
            config=ChannelConfig(**config),
            secrets=ChannelSecrets(access_token="tok", signing_key="key-0123456789"),
        )
    return tenant_id, channel_id


def _message(
    db: Engine,
    tenant_id: int,
    channel_id: int,
    media: list[dict[str, object]],
    *,
    provider_message_id: str | None = None,
) -> int:
    """An inbound message carrying `media`, written the way persist writes it."""
    with system_tx(db) as conn:
        contact_id = conn.execute(
            text("INSERT INTO contacts (tenant_id, name) VALUES (:t, 'Ana') RETURNING id"),
            {"t": tenant_id},
        ).scalar_one()
        ticket_id = conn.execute(
            text(
                "INSERT INTO tickets (tenant_id, channel_id, contact_id, protocol) "
                "VALUES (:t, :c, :k, :p) RETURNING id"
            ),
            {"t": tenant_id, "c": channel_id, "k": contact_id, "p": uuid.uuid4().hex},
        ).scalar_one()
        return int(
            conn.execute(
                text(
                    "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, "
                    "direction, type, body, media, provider_message_id, status) VALUES "
                    "(:t, :tk, :k, :c, 'in', 'image', 'see attached', CAST(:media AS jsonb), "
                    ":pmid, 'received') RETURNING id"
                ),
                {
                    "t": tenant_id,
                    "tk": ticket_id,
                    "k": contact_id,
                    "c": channel_id,
                    "media": json.dumps(media),
                    "pmid": provider_message_id or f"wamid.{uuid.uuid4().hex}",
                },
            ).scalar_one()
        )


def _media(db: Engine, message_id: int) -> list[dict[str, Any]]:
    with system_tx(db) as conn:
        raw = conn.execute(
            text("SELECT media::text FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    return list(json.loads(raw))


def _body(db: Engine, message_id: int) -> str:
    with system_tx(db) as conn:
        return str(
            conn.execute(
                text("SELECT body FROM messages WHERE id = :id"), {"id": message_id}
            ).scalar_one()
        )


@pytest.fixture
def storage(tmp_path: Path) -> LocalMediaStorage:
    return LocalMediaStorage(tmp_path / "media")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def _run(
    db: Engine,
    message_id: int,
    index: int,
    *,
    source: Any,
    storage: LocalMediaStorage,
    http: httpx.Client,
    type: ChannelType = ChannelType.WHATSAPP,
    last_attempt: bool = False,
    max_bytes: int = MAX_BYTES,
) -> str:
    return download(
        message_id,
        index,
        db=db,
        adapters={type: source},
        http=http,
        storage=storage,
        max_bytes=max_bytes,
        allowed=DEFAULT_ALLOWED_TYPES,
        last_attempt=last_attempt,
    )


# a fake provider ----------------------------------------------------------------------------


def test_stored_once_even_when_run_twice(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("m0"), _element("m1")])
    source = FakeSource()

    assert _run(clean_db, message_id, 1, source=source, storage=storage, http=http) == "stored"
    assert _run(clean_db, message_id, 1, source=source, storage=storage, http=http) == (
        "already_stored"
    )

    assert source.calls == ["m1"]  # the second run never asked the provider
    first, second = _media(clean_db, message_id)
    assert first == _element("m0")  # the neighbour is untouched
    uri = f"local:tenants/{tenant_id}/media/{message_id}-1.jpg"
    assert second == {
        **_element("m1"),
        "download_status": "stored",
        "storage_uri": uri,
        "size": len(JPEG),
        "download_error": None,
        "download_attempts": 1,
    }
    assert storage.get(uri) == JPEG
    assert [p.name for p in storage.root.rglob("*") if p.is_file()] == [f"{message_id}-1.jpg"]


def test_too_large_is_failed_with_the_reason_and_the_message_kept(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("big")])
    source = FakeSource(MediaContent(data=b"\xff" * (MAX_BYTES + 1), mime_type="image/jpeg"))

    with pytest.raises(MediaRejectedError):
        _run(clean_db, message_id, 0, source=source, storage=storage, http=http)

    [item] = _media(clean_db, message_id)
    assert item["download_status"] == "failed"
    assert f"more than the {MAX_BYTES} allowed" in item["download_error"]
    assert {k: item[k] for k in _element("big")} == _element("big")  # metadata intact
    assert "storage_uri" not in item
    assert _body(clean_db, message_id) == "see attached"
    assert not storage.root.exists() or not any(storage.root.rglob("*.jpg"))


def test_a_type_outside_the_policy_is_failed(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("exe")])
    source = FakeSource(MediaContent(data=b"MZ\x90\x00", mime_type="application/x-msdownload"))
    with pytest.raises(MediaRejectedError):
        _run(clean_db, message_id, 0, source=source, storage=storage, http=http)
    [item] = _media(clean_db, message_id)
    assert item["download_status"] == "failed"
    assert "application/x-msdownload is not allowed" in item["download_error"]


def test_the_webhooks_type_and_name_apply_when_the_download_has_none(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    element = _element("doc", type="document", mime_type="application/pdf", filename="nota.pdf")
    message_id = _message(clean_db, tenant_id, channel_id, [element])
    source = FakeSource(MediaContent(data=b"%PDF-1.4 ..."))
    assert _run(clean_db, message_id, 0, source=source, storage=storage, http=http) == "stored"
    [item] = _media(clean_db, message_id)
    assert item["storage_uri"] == f"local:tenants/{tenant_id}/media/{message_id}-0.pdf"


def test_a_message_or_item_that_is_not_there_is_gone(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("m0")])
    source = FakeSource()
    assert _run(clean_db, message_id, 1, source=source, storage=storage, http=http) == "gone"
    assert _run(clean_db, message_id + 1, 0, source=source, storage=storage, http=http) == "gone"
    assert source.calls == []


def test_a_storage_outage_is_retried_and_never_blamed_on_the_item(
    clean_db: Engine, tmp_path: Path, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("m0")])
    broken = BrokenStorage(tmp_path / "media")
    for last_attempt in (False, True):
        with pytest.raises(StorageUnavailableError):
            _run(
                clean_db,
                message_id,
                0,
                source=FakeSource(),
                storage=broken,
                http=http,
                last_attempt=last_attempt,
            )
    [item] = _media(clean_db, message_id)
    assert "download_status" not in item  # a dead-letter requeue finishes the job
    assert item["download_attempts"] == 2


def test_waiting_for_a_rate_limit_on_the_last_attempt_fails_nothing(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, channel_id = _channel(clean_db, ChannelType.WHATSAPP, "555")
    message_id = _message(clean_db, tenant_id, channel_id, [_element("m0")])
    source = FakeSource(error=RateLimitedError("slow down", delay_ms=1000))
    with pytest.raises(RateLimitedError):
        _run(clean_db, message_id, 0, source=source, storage=storage, http=http, last_attempt=True)
    [item] = _media(clean_db, message_id)
    assert "download_status" not in item


# the WhatsApp adapter against the sandbox -----------------------------------------------------


@pytest.fixture
def whatsapp(clean_db: Engine, sandbox: Sandbox) -> Iterator[tuple[int, int]]:
    sandbox.state.reset()
    yield _channel(
        clean_db,
        ChannelType.WHATSAPP,
        "106540352242922",
        api_base_url=sandbox.http_url + "/v21.0",
    )
    sandbox.state.reset()


def test_whatsapp_media_is_fetched_from_the_graph_api_and_stored(
    clean_db: Engine,
    whatsapp: tuple[int, int],
    sandbox: Sandbox,
    storage: LocalMediaStorage,
    http: httpx.Client,
) -> None:
    tenant_id, channel_id = whatsapp
    message_id = _message(clean_db, tenant_id, channel_id, [_element("1013859600285441")])

    assert _run(clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http) == "stored"
    assert _run(clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http) == (
        "already_stored"
    )

    [item] = _media(clean_db, message_id)
    assert item["download_status"] == "stored"
    assert storage.get(item["storage_uri"]) == media_bytes("1013859600285441")
    assert item["size"] == len(media_bytes("1013859600285441"))
    # One media-info lookup: the second run asked the provider nothing.
    assert [r.path for r in sandbox.state.requests()] == ["/v21.0/1013859600285441"]


def test_whatsapp_5xx_is_retried_and_the_last_attempt_records_the_failure(
    clean_db: Engine,
    whatsapp: tuple[int, int],
    sandbox: Sandbox,
    storage: LocalMediaStorage,
    http: httpx.Client,
) -> None:
    tenant_id, channel_id = whatsapp
    message_id = _message(clean_db, tenant_id, channel_id, [_element("wa-5xx")])
    sandbox.state.add_fault(Fault(provider="whatsapp", mode="server_error", count=2))

    with pytest.raises(RetryableError) as first:
        _run(clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http)
    assert isinstance(first.value, ProviderUnavailableError)
    [item] = _media(clean_db, message_id)
    assert "download_status" not in item and item["download_attempts"] == 1

    with pytest.raises(ProviderUnavailableError):
        _run(
            clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http, last_attempt=True
        )
    [item] = _media(clean_db, message_id)
    assert item["download_status"] == "failed"
    assert item["download_error"].startswith("ProviderUnavailableError")
    assert {k: item[k] for k in _element("wa-5xx")} == _element("wa-5xx")
    assert _body(clean_db, message_id) == "see attached"

    # An operator's requeue of the dead letter, once Meta is back, still stores it.
    assert _run(clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http) == "stored"
    [item] = _media(clean_db, message_id)
    assert (item["download_status"], item["download_error"]) == ("stored", None)


def test_whatsapp_refusal_fails_the_item_at_once(
    clean_db: Engine,
    whatsapp: tuple[int, int],
    sandbox: Sandbox,
    storage: LocalMediaStorage,
    http: httpx.Client,
) -> None:
    tenant_id, channel_id = whatsapp
    message_id = _message(clean_db, tenant_id, channel_id, [_element("wa-gone")])
    sandbox.state.add_fault(Fault(provider="whatsapp", mode="permanent"))
    with pytest.raises(ProviderRejectedError):
        _run(clean_db, message_id, 0, source=WHATSAPP, storage=storage, http=http)
    [item] = _media(clean_db, message_id)
    assert item["download_status"] == "failed"
    assert item["download_error"].startswith("ProviderRejectedError")


# e-mail attachments live in the inbox body -----------------------------------------------------


def _email_fixture(name: str) -> tuple[bytes, str]:
    head, _, body = (FIXTURES / "email" / f"{name}.http").read_bytes().partition(b"\r\n\r\n")
    return body, head.decode().partition(": ")[2]


def _email_message(db: Engine, *, store_inbox_row: bool = True) -> tuple[int, int, InboundMessage]:
    """(tenant id, message id, event) of the fixture mail with two attachments, its webhook
    body stored in the inbox under the key ingest gives it."""
    tenant_id, channel_id = _channel(
        db, ChannelType.EMAIL, EMAIL_ADDRESS, inbound_provider="mailgun"
    )
    body, content_type = _email_fixture("mailgun_attachments")
    adapter = EmailAdapter()
    [event] = adapter.parse(body, address_id=EMAIL_ADDRESS, content_type=content_type)
    assert isinstance(event, InboundMessage) and len(event.media) == 2
    if store_inbox_row:
        request = WebhookRequest(body=body, headers={}, url="https://x", content_type=content_type)
        dedupe_key = adapter.dedupe_key(request)
        assert email_inbox_key(event.provider_message_id) == dedupe_key
        with system_tx(db) as conn:
            conn.execute(
                text(
                    "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body, content_type, "
                    "status) VALUES (:t, :c, :k, :b, :ct, 'processed')"
                ),
                {"t": tenant_id, "c": channel_id, "k": dedupe_key, "b": body, "ct": content_type},
            )
    media = [m.model_dump(mode="json") for m in event.media]
    message_id = _message(
        db, tenant_id, channel_id, media, provider_message_id=event.provider_message_id
    )
    return tenant_id, message_id, event


def test_email_attachments_are_cut_from_the_inbox_body(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    tenant_id, message_id, event = _email_message(clean_db)
    # The e-mail adapter refuses fetch_media: the stage must not ask it.
    source = FakeSource(error=AssertionError("fetch_media called for an e-mail attachment"))
    for index in (0, 1):
        outcome = _run(
            clean_db,
            message_id,
            index,
            source=source,
            storage=storage,
            http=http,
            type=ChannelType.EMAIL,
            max_bytes=1024 * 1024,
        )
        assert outcome == "stored"

    pdf, png = _media(clean_db, message_id)
    assert pdf["storage_uri"] == f"local:tenants/{tenant_id}/media/{message_id}-0.pdf"
    assert png["storage_uri"] == f"local:tenants/{tenant_id}/media/{message_id}-1.png"
    for item, media in zip((pdf, png), event.media, strict=True):
        data = storage.get(item["storage_uri"])
        assert hashlib.sha256(data).hexdigest() == media.sha256
        assert item["size"] == len(data)
        assert item["filename"] == media.filename  # the customer's name stays metadata only
    assert storage.get(png["storage_uri"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_an_email_attachment_whose_webhook_is_gone_is_failed(
    clean_db: Engine, storage: LocalMediaStorage, http: httpx.Client
) -> None:
    _, message_id, _ = _email_message(clean_db, store_inbox_row=False)
    with pytest.raises(MediaGoneError):
        _run(
            clean_db,
            message_id,
            0,
            source=FakeSource(),
            storage=storage,
            http=http,
            type=ChannelType.EMAIL,
        )
    pdf, png = _media(clean_db, message_id)
    assert pdf["download_status"] == "failed"
    assert "no longer stored" in pdf["download_error"]
    assert "download_status" not in png
