"""Hostile webhooks over real HTTP: forged and replayed signatures, oversize, deeply nested and
slowly trickled bodies. Each is refused with a 4xx (or applied once), never a 500, and the
worker keeps processing what comes after."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.engines import EngineOf
from tests.support.harness import (
    RunningEngine,
    Seeded,
    fixture_bytes,
    seed_whatsapp,
    sign,
)

TEXT = fixture_bytes("whatsapp", "text.json")


@pytest.fixture
def engine(engine_of: EngineOf, clean_db: Engine) -> RunningEngine:
    return engine_of(INGEST_MAX_BODY_BYTES="65536", WEBHOOK_BODY_TIMEOUT_S="1")


@pytest.fixture
def seeded(clean_db: Engine, engine: RunningEngine) -> Seeded:
    return seed_whatsapp(clean_db)


def _post(engine: RunningEngine, channel_id: int, body: bytes, headers: dict[str, str]) -> Any:
    with engine.client() as c:
        return c.post(f"/webhooks/whatsapp/{channel_id}", content=body, headers=headers)


def _message(wamid: str) -> bytes:
    doc = json.loads(TEXT)
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = wamid
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": sign(TEXT, "another-apps-secret")},
        {"X-Hub-Signature-256": sign(TEXT + b" ")},  # signed bytes differ from those sent
        {"X-Hub-Signature-256": "md5=abc"},
    ],
    ids=["missing", "zeros", "wrong-secret", "other-bytes", "wrong-scheme"],
)
def test_forged_signatures_are_refused_and_nothing_is_stored(
    clean_db: Engine, engine: RunningEngine, seeded: Seeded, headers: dict[str, str]
) -> None:
    response = _post(engine, seeded.channel_id, TEXT, headers)
    assert response.status_code == 401
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0


def test_a_replayed_webhook_is_applied_once(
    clean_db: Engine, engine: RunningEngine, seeded: Seeded
) -> None:
    first = engine.post_whatsapp(seeded.channel_id, TEXT)
    replay = engine.post_whatsapp(seeded.channel_id, TEXT)
    assert first.json()["stored"] == 1
    assert replay.status_code == 200 and replay.json()["duplicates"] == 1
    engine.drain()
    assert count(clean_db, "SELECT count(*) FROM inbox") == 1
    assert count(clean_db, "SELECT count(*) FROM messages") == 1


def test_an_oversize_body_is_refused_whether_declared_or_streamed(
    clean_db: Engine, engine: RunningEngine, seeded: Seeded
) -> None:
    big = b'{"object": "' + b"x" * 70_000 + b'"}'
    assert engine.post_whatsapp(seeded.channel_id, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    headers = {"X-Hub-Signature-256": sign(big), "Content-Type": "application/json"}
    with engine.client() as c:
        response = c.post(
            f"/webhooks/whatsapp/{seeded.channel_id}", content=chunks(), headers=headers
        )
    assert response.status_code == 413
    assert count(clean_db, "SELECT count(*) FROM inbox") == 0
    assert httpx.get(f"{engine.base_url}/healthz").status_code == 200


def _nested(opening: bytes, depth: int) -> bytes:
    closing = b"}" if opening.startswith(b"{") else b"]"
    return opening * depth + b"1" + closing * depth


def _inside_a_valid_envelope(depth: int) -> bytes:
    """A real message whose text is nested `depth` levels: the web can read its addresses,
    so it is stored and only the worker meets the nesting."""
    doc = json.loads(_message("wamid.deep"))
    marker = "NESTED_HERE"
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = marker
    return json.dumps(doc).encode().replace(f'"{marker}"'.encode(), _nested(b'{"a":', depth))


# Bodies under INGEST_MAX_BODY_BYTES, so only nesting is on trial.
@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        (_nested(b'{"a":', 10_000), (400,)),
        (_nested(b"[", 10_000), (400,)),
        (_inside_a_valid_envelope(900), (200,)),
    ],
    ids=["objects", "arrays", "inside-a-message"],
)
def test_deep_nesting_never_crashes_web_or_worker(
    clean_db: Engine, engine: RunningEngine, seeded: Seeded, body: bytes, statuses: tuple[int]
) -> None:
    response = engine.post_whatsapp(seeded.channel_id, body)
    assert response.status_code in statuses, response.text
    # Whatever was accepted is settled as not processable, and the next message still works.
    assert engine.post_whatsapp(seeded.channel_id, _message("wamid.after")).status_code == 200
    engine.drain()
    assert count(clean_db, "SELECT count(*) FROM messages") == 1
    assert count(clean_db, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 0


def test_a_body_trickled_one_byte_at_a_time_is_cut_off(
    engine: RunningEngine, seeded: Seeded
) -> None:
    host, port = engine.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /webhooks/whatsapp/{seeded.channel_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(TEXT)}\r\n"
        f"X-Hub-Signature-256: {sign(TEXT)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        for byte in TEXT[:-1]:  # never the last byte: only the server's timeout can end this
            sock.sendall(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                answer = sock.recv(4096)
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    # The connection held open did not take the web process with it.
    assert httpx.get(f"{engine.base_url}/healthz").status_code == 200
