"""Every adapter's parser, fed mutated real payloads, rejects cleanly or yields events.

Seeds are the sample payloads in tests/fixtures/<channel>/. Hypothesis drops keys, changes
types, inserts huge or odd unicode strings, nests deeply, truncates and splices bytes. The only
acceptable outcomes are canonical events (a malformed part becomes a MalformedEvent) or the
adapter's documented rejection, InvalidPayloadError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.registry import all_adapters
from engine.errors import InvalidPayloadError
from engine.events import ChannelType, InboundEvent, WebhookRequest

EVENT_TYPES = get_args(get_args(InboundEvent)[0])

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Fixture folder and the provider address each channel's samples are sent to.
CHANNELS = {
    ChannelType.WHATSAPP: ("whatsapp", "106540352242922"),
    ChannelType.MESSENGER: ("messenger", "107358231245512"),
    ChannelType.INSTAGRAM: ("instagram", "17841405793187218"),
    ChannelType.TELEGRAM: ("telegram", "7012345678"),
    ChannelType.SMS: ("sms", "+14155550100"),
    ChannelType.EMAIL: ("email", "support@help.acme.test"),
}
URLENCODED = "application/x-www-form-urlencoded"
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "x" * 200_000,
        "\x00",
        "\ud7ff\ufffd\U0010ffff",
        "'; DROP TABLE messages; --",
        "<script>alert(1)</script>",
        "+5511987654321" * 1000,
        "-1",
        "1e309",
        "NaN",
    ]
) | st.text(max_size=50)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | HOSTILE_TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


def _samples(folder: str) -> list[tuple[str, bytes, str]]:
    """(name, body, content type) of every sample of a channel."""
    out = []
    for path in sorted((FIXTURES / folder).iterdir()):
        raw = path.read_bytes()
        if path.suffix == ".http":
            head, _, body = raw.partition(b"\r\n\r\n")
            out.append((path.name, body, head.decode().partition(": ")[2]))
        elif path.suffix == ".txt":
            out.append((path.name, raw, URLENCODED))
        else:
            out.append((path.name, raw, "application/json"))
    return out


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, (*prefix, i))
    return found


def _mutate_json(doc: Any, data: st.DataObject) -> Any:
    """The document with one to three values dropped, replaced, wrapped or deeply nested."""
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["drop", "replace", "wrap", "nest"]))
        replacement: Any
        if action == "drop" and path:
            replacement = None
        elif action == "wrap":
            replacement = [_get(doc, path)]
        elif action == "nest":
            replacement = _get(doc, path)
            as_dict = data.draw(st.booleans())
            for _ in range(data.draw(st.integers(50, 900))):
                replacement = {"a": replacement} if as_dict else [replacement]
        else:
            replacement = data.draw(JSON_VALUES)
        doc = _set(doc, path, replacement, drop=action == "drop")
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any, *, drop: bool) -> Any:
    if not path:
        return value
    parent = _get(doc, path[:-1])
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _mutate_form(body: bytes, data: st.DataObject) -> bytes:
    fields = parse_qsl(body.decode(), keep_blank_values=True)
    for _ in range(data.draw(st.integers(1, 3))):
        if not fields:
            break
        i = data.draw(st.integers(0, len(fields) - 1))
        if data.draw(st.booleans()):
            del fields[i]
        else:
            fields[i] = (fields[i][0], data.draw(HOSTILE_TEXT))
    return urlencode(fields).encode()


def _mutate_bytes(body: bytes, data: st.DataObject) -> bytes:
    cut = data.draw(st.integers(0, len(body)))
    junk = data.draw(st.binary(max_size=40))
    return body[:cut] + junk + body[cut + data.draw(st.integers(0, 40)) :]


def _hostile_body(body: bytes, content_type: str, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["structured", "bytes"]))
    if kind == "bytes":
        return _mutate_bytes(body, data)
    if content_type == "application/json":
        doc = _mutate_json(json.loads(body), data)
        return json.dumps(doc).encode()
    if content_type == URLENCODED:
        return _mutate_form(body, data)
    return _mutate_bytes(body, data)  # multipart: splice the raw bytes


def _exercise(channel: ChannelType, body: bytes, content_type: str) -> None:
    """Every entry point an untrusted body reaches; only InvalidPayloadError may escape."""
    adapter = all_adapters()[channel]
    address = CHANNELS[channel][1]
    request = WebhookRequest(
        body=body,
        headers={"content-type": content_type},
        url="https://example.test/webhooks/x/1",
        content_type=content_type,
    )
    try:
        addresses = adapter.address_ids(request)
    except InvalidPayloadError as exc:
        assert str(exc)  # a reason someone can read; the web answers 400
    else:
        assert addresses is None or all(isinstance(a, str) for a in addresses)
        # The web asks for the key only of a body whose addresses it could read: no excuse.
        assert isinstance(adapter.dedupe_key(request), str)
    try:
        events = adapter.parse(body, address_id=address, content_type=content_type)
    except InvalidPayloadError as exc:
        assert str(exc)
        return
    assert all(isinstance(e, EVENT_TYPES) for e in events)


@pytest.mark.parametrize("channel", list(CHANNELS), ids=lambda c: c.value)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_samples_never_crash_the_parser(channel: ChannelType, data: st.DataObject) -> None:
    _, body, content_type = data.draw(st.sampled_from(_samples(CHANNELS[channel][0])))
    _exercise(channel, _hostile_body(body, content_type, data), content_type)


@pytest.mark.parametrize("channel", list(CHANNELS), ids=lambda c: c.value)
def test_the_unmutated_samples_parse(channel: ChannelType) -> None:
    """The seeds themselves are valid: the property above starts from real payloads."""
    for name, body, content_type in _samples(CHANNELS[channel][0]):
        adapter = all_adapters()[channel]
        if "malformed" in name or "missing" in name:
            continue
        events = adapter.parse(body, address_id=CHANNELS[channel][1], content_type=content_type)
        assert events, name


@pytest.mark.parametrize("channel", list(CHANNELS), ids=lambda c: c.value)
def test_ten_thousand_levels_of_nesting_are_rejected_not_a_recursion_error(
    channel: ChannelType,
) -> None:
    depth = 10_000
    body = ('{"entry": ' * depth + "1" + "}" * depth).encode()
    _exercise(channel, body, "application/json")
    _exercise(channel, b"[" * depth + b"]" * depth, "application/json")
