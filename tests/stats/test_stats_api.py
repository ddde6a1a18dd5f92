"""The statistics endpoints over HTTP: who may read them, what they validate, what they say."""

from __future__ import annotations

import httpx
import pytest

from tests.stats.conftest import token_for
from tests.stats.world import World

pytestmark = pytest.mark.anyio
MAY = {"from": "2024-05-01", "to": "2024-05-02"}
ENDPOINTS = ["volume", "first-response", "resolution", "agents", "fcr", "backlog", "campaigns"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_agents_may_not_read_statistics(
    http: httpx.AsyncClient, world: World, endpoint: str
) -> None:
    response = await http.get(
        f"/api/v1/stats/{endpoint}", params=MAY, headers=token_for(world, "agent")
    )

    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ["supervisor", "admin"])
async def test_supervisors_and_admins_read_statistics(
    http: httpx.AsyncClient, world: World, endpoint: str, role: str
) -> None:
    params = {} if endpoint == "backlog" else MAY
    response = await http.get(
        f"/api/v1/stats/{endpoint}", params=params, headers=token_for(world, role)
    )

    assert response.status_code == 200, response.text


async def test_volume_names_groups_and_the_period(http: httpx.AsyncClient, world: World) -> None:
    response = await http.get(
        "/api/v1/stats/volume",
        params={**MAY, "group_by": "channel"},
        headers=token_for(world, "supervisor"),
    )

    body = response.json()
    assert body["period"] == {
        "from": "2024-05-01",
        "to": "2024-05-02",
        "time_zone": "America/Sao_Paulo",
    }
    assert [(g["label"], g["inbound"], g["outbound"]) for g in body["groups"]] == [
        ("WhatsApp Sales", 3, 5),
        ("Telegram", 4, 1),
    ]


async def test_first_response_and_fcr_over_http(http: httpx.AsyncClient, world: World) -> None:
    headers = token_for(world, "admin")
    frt = (await http.get("/api/v1/stats/first-response", params=MAY, headers=headers)).json()
    fcr = (await http.get("/api/v1/stats/fcr", params=MAY, headers=headers)).json()

    assert frt["report"]["overall"]["tickets"] == 4
    assert frt["report"]["overall"]["p50_s"] == 900
    assert frt["report"]["business_hours"]["p50_s"] == 300
    assert fcr["report"]["overall"]["closed"] == 3
    assert fcr["report"]["overall"]["first_contact"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2024-05-03", "to": "2024-05-01"}, "to"),
        ({"from": "2023-01-01", "to": "2024-05-01"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-02-30"}, "to"),
        ({"group_by": "weekday"}, "group_by"),
        ({"channel_id": "0"}, "channel_id"),
        ({"queue_id": "abc"}, "queue_id"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_parameters_are_refused_by_name(
    http: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    response = await http.get(
        "/api/v1/stats/volume", params=params, headers=token_for(world, "supervisor")
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error["message"]
    assert field in [d["field"] for d in error["details"]]


async def test_filters_naming_another_tenants_channel_count_nothing(
    http: httpx.AsyncClient, world: World
) -> None:
    # B's channel id: the filter is applied under A's row-level security, so it finds nothing.
    b_channel = world.whatsapp + 2
    response = await http.get(
        "/api/v1/stats/volume",
        params={**MAY, "channel_id": str(b_channel)},
        headers=token_for(world, "admin"),
    )

    assert response.status_code == 200
    assert response.json()["groups"] == []
