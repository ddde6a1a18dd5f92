"""WhatsApp template sends: the adapter's request through the sandbox Graph API, which records
well-formed templates and refuses malformed ones as the Cloud API does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.sandbox import Sandbox
from adapters.whatsapp import ADAPTER
from engine.errors import ProviderRejectedError
from engine.events import (
    ChannelConfig,
    ChannelConnection,
    ChannelSecrets,
    ChannelType,
    MessageType,
    OutboundMessage,
    Template,
)

PHONE_NUMBER_ID = "106540352242922"
BEARER = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    sandbox.state.reset()
    with httpx.Client(base_url=sandbox.http_url, timeout=5.0) as http:
        yield http


def channel(sandbox: Sandbox) -> ChannelConnection:
    return ChannelConnection(
        id=7,
        tenant_id=3,
        type=ChannelType.WHATSAPP,
        external_id=PHONE_NUMBER_ID,
        config=ChannelConfig(api_base_url=f"{sandbox.http_url}/v21.0"),
        secrets=ChannelSecrets(access_token="sandbox-token", app_secret="s3cr3t-app"),
    )


def template_message(template: Template) -> OutboundMessage:
    return OutboundMessage(
        message_id=101,
        tenant_id=3,
        channel_id=7,
        recipient="5511987654321",
        type=MessageType.TEMPLATE,
        template=template,
    )


def recorded(client: httpx.Client) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = client.get(
        "/_sandbox/requests", params={"provider": "whatsapp"}
    ).json()
    return answer


def test_the_adapter_sends_a_template_the_sandbox_records(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    template = Template(name="order_update", language="pt_BR", parameters=("Ana", "P0001"))
    with httpx.Client(timeout=5.0) as http:
        result = ADAPTER.send(template_message(template), channel=channel(sandbox), http=http)
    [request] = recorded(client)
    assert request["status"] == 200
    assert request["message_id"] == result.provider_message_id
    assert request["json"]["type"] == "template"
    assert request["json"]["template"] == {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "P0001"}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ({"language": {"code": "pt_BR"}}, "template['name']"),
        ({"name": "order_update"}, "template['language']['code']"),
        (
            {
                "name": "order_update",
                "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": " "}]}],
            },
            "non-empty text",
        ),
    ],
)
def test_a_malformed_template_is_refused_like_the_cloud_api(
    client: httpx.Client, template: dict[str, Any], complaint: str
) -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": "5511987654321",
        "type": "template",
        "template": template,
    }
    response = client.post(f"/v21.0/{PHONE_NUMBER_ID}/messages", json=body, headers=BEARER)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert complaint in error["message"]
    [request] = recorded(client)
    assert (request["status"], request["message_id"]) == (400, None)


def test_an_unknown_template_fault_fails_the_send_permanently(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    fault = {"provider": "whatsapp", "mode": "permanent", "code": 132001}
    assert client.post("/_sandbox/faults", json=fault).status_code == 201
    template = Template(name="no_such_template", language="en_US")
    with httpx.Client(timeout=5.0) as http, pytest.raises(ProviderRejectedError) as refused:
        ADAPTER.send(template_message(template), channel=channel(sandbox), http=http)
    assert "132001" in str(refused.value.code)
