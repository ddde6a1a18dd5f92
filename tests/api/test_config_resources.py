"""Tags, queues, users, channels, settings and fast replies as an admin and their team use them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.resources import ROUTERS
from engine.secrets_box import open_secrets
from tests.api.helpers import SETTINGS
from tests.api.resources_helpers import Team, error_fields, scalar

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.api.resources_fixtures"]  # the api, team and other fixtures


# Tags ------------------------------------------------------------------------------------


async def test_tags_crud_with_unique_names(api: httpx.AsyncClient, team: Team) -> None:
    h = team.as_("supervisor")
    created = await api.post(
        "/api/v1/tags",
        json={"name": "VIP", "color": "#FFAA00", "auto_keywords": ["urgent", "refund"]},
        headers=h,
    )
    assert created.status_code == 201, created.text
    tag = created.json()
    assert (tag["color"], tag["auto_keywords"]) == ("#ffaa00", ["urgent", "refund"])
    url = f"/api/v1/tags/{tag['id']}"

    duplicate = await api.post("/api/v1/tags", json={"name": "VIP"}, headers=h)
    changed = await api.patch(
        url, json={"color": None, "name": "Gold", "auto_keywords": ["gold"]}, headers=h
    )
    listed = await api.get("/api/v1/tags?search=gol", headers=team.as_("agent"))
    deleted = await api.delete(url, headers=h)

    assert duplicate.status_code == 409
    assert changed.json() == {**tag, "name": "Gold", "color": None, "auto_keywords": ["gold"]}
    assert [t["id"] for t in listed.json()["items"]] == [tag["id"]]
    assert deleted.status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "color": "red"}, "color"),
        ({"name": "x", "auto_keywords": [f"k{i}" for i in range(51)]}, "auto_keywords"),
        ({"name": "x", "auto_keywords": ["k" * 51]}, "auto_keywords.0"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x", "extra": 1}, "extra"),
    ],
)
async def test_invalid_tags_name_the_field(
    api: httpx.AsyncClient, team: Team, body: dict[str, object], field: str
) -> None:
    response = await api.post("/api/v1/tags", json=body, headers=team.as_("admin"))

    assert response.status_code == 422
    assert error_fields(response) == [field]


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # nested past any parser's depth
        b'{"name": "x", "color": ' + b"9" * 5000 + b"}",  # a number past int's digit limit
        b'{"name": "\xff"}',  # not UTF-8
    ],
    ids=["deep", "long-number", "not-utf8"],
)
async def test_a_body_json_cannot_parse_is_400_not_500(
    api: httpx.AsyncClient, team: Team, content: bytes
) -> None:
    response = await api.post(
        "/api/v1/tags",
        content=content,
        headers={**team.as_("supervisor"), "Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


async def test_agents_read_tags_but_cannot_manage_them(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    theirs = await api.post("/api/v1/tags", json={"name": "secret"}, headers=other.as_("admin"))

    assert (await api.get("/api/v1/tags", headers=team.as_("agent"))).status_code == 200
    assert (
        await api.post("/api/v1/tags", json={"name": "n"}, headers=team.as_("agent"))
    ).status_code == 403
    foreign = f"/api/v1/tags/{theirs.json()['id']}"
    assert (await api.get(foreign, headers=team.as_("admin"))).status_code == 404
    assert (await api.delete(foreign, headers=team.as_("admin"))).status_code == 404


# Queues ----------------------------------------------------------------------------------


async def test_queues_crud_and_members(api: httpx.AsyncClient, team: Team, other: Team) -> None:
    h = team.as_("admin")
    created = await api.post(
        "/api/v1/queues",
        json={
            "name": "Sales",
            "color": "#00ff00",
            "greeting": "Hi!",
            "distribution": "round_robin",
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    queue = created.json()
    url = f"/api/v1/queues/{queue['id']}"
    members = [team.user_ids["agent"], team.user_ids["supervisor"]]

    set_members = await api.put(f"{url}/members", json={"user_ids": members}, headers=h)
    foreign = await api.put(
        f"{url}/members",
        json={"user_ids": [team.user_ids["agent"], other.user_ids["agent"]]},
        headers=h,
    )
    narrowed = await api.put(
        f"{url}/members", json={"user_ids": [team.user_ids["agent"]]}, headers=h
    )
    repeated = await api.put(
        f"{url}/members", json={"user_ids": [members[0], members[0]]}, headers=h
    )
    duplicate = await api.post("/api/v1/queues", json={"name": "Sales"}, headers=h)
    bad_mode = await api.patch(url, json={"distribution": "random"}, headers=h)

    assert set_members.json()["user_ids"] == sorted(members)
    assert foreign.status_code == 422 and error_fields(foreign) == ["user_ids.1"]
    assert str(other.user_ids["agent"]) in foreign.text
    assert narrowed.json()["user_ids"] == [team.user_ids["agent"]]
    assert repeated.status_code == 422 and error_fields(repeated) == ["user_ids"]
    assert duplicate.status_code == 409
    assert bad_mode.status_code == 422 and error_fields(bad_mode) == ["distribution"]
    user = await api.get(f"/api/v1/users/{team.user_ids['agent']}", headers=h)
    assert user.json()["queue_ids"] == [queue["id"]]
    assert (await api.delete(url, headers=h)).status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404


async def test_only_admins_manage_queues(api: httpx.AsyncClient, team: Team) -> None:
    for role in ("agent", "supervisor"):
        response = await api.post("/api/v1/queues", json={"name": role}, headers=team.as_(role))
        assert response.status_code == 403, role
    assert (await api.get("/api/v1/queues", headers=team.as_("agent"))).status_code == 200


# Users -----------------------------------------------------------------------------------

_NEVER_SHOWN = ("password", "hash", "totp_secret", "backup_code")


async def test_creating_a_user_hashes_the_password_and_never_returns_it(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    email = f"New.Agent-{team.label}@Team.test"
    response = await api.post(
        "/api/v1/users",
        json={
            "name": "New Agent",
            "email": email,
            "password": "correct horse battery",
            "role": "agent",
        },
        headers=team.as_("admin"),
    )

    assert response.status_code == 201, response.text
    user = response.json()
    assert (user["email"], user["role"]) == (email.lower(), "agent")
    listed = await api.get("/api/v1/users?limit=100", headers=team.as_("admin"))
    for text_ in (response.text, listed.text):
        assert not any(word in text_ for word in _NEVER_SHOWN)
    stored = await scalar(db, "SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert isinstance(stored, str) and stored.startswith("$2b$")
    again = await api.post(
        "/api/v1/users",
        json={
            "name": "Twin",
            "email": email.upper(),
            "password": "another password",
            "role": "agent",
        },
        headers=team.as_("admin"),
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "é" * 37}, "password"),  # 74 bytes: past what bcrypt reads
        ({"role": "owner"}, "role"),
        ({"email": "nope"}, "email"),
        ({"max_open_tickets": -1}, "max_open_tickets"),
    ],
)
async def test_invalid_users_name_the_field(
    api: httpx.AsyncClient, team: Team, body: dict[str, object], field: str
) -> None:
    base = {"name": "U", "email": f"u-{uuid.uuid4().hex}@x.test", "password": "long enough pw"}
    response = await api.post(
        "/api/v1/users", json={**base, "role": "agent", **body}, headers=team.as_("admin")
    )

    assert response.status_code == 422
    assert error_fields(response) == [field]


async def test_only_a_super_user_grants_or_touches_the_super_role(
    api: httpx.AsyncClient, team: Team
) -> None:
    body = {"name": "S", "password": "long enough pw", "role": "super"}

    by_admin = await api.post(
        "/api/v1/users",
        json={**body, "email": f"s1-{team.label}@x.test"},
        headers=team.as_("admin"),
    )
    by_super = await api.post(
        "/api/v1/users",
        json={**body, "email": f"s2-{team.label}@x.test"},
        headers=team.as_("super"),
    )
    promote = await api.patch(
        f"/api/v1/users/{team.user_ids['agent']}", json={"role": "super"}, headers=team.as_("admin")
    )
    touch_super = await api.patch(
        f"/api/v1/users/{team.user_ids['super']}", json={"name": "X"}, headers=team.as_("admin")
    )

    assert by_admin.status_code == 403
    assert by_super.status_code == 201
    assert promote.status_code == 403 and touch_super.status_code == 403
    assert (
        await api.post("/api/v1/users", json=body, headers=team.as_("supervisor"))
    ).status_code == 403


async def test_a_role_change_ends_the_users_sessions_and_the_last_admin_stays(
    api: httpx.AsyncClient, team: Team
) -> None:
    admin_token = team.as_("admin")
    demoted = await api.patch(
        f"/api/v1/users/{team.user_ids['admin']}",
        json={"role": "supervisor", "max_open_tickets": 5},
        headers=team.as_("super"),
    )
    assert demoted.status_code == 200, demoted.text
    assert (demoted.json()["role"], demoted.json()["max_open_tickets"]) == ("supervisor", 5)
    # The old token carried "admin": it no longer works at all.
    assert (await api.get("/api/v1/users", headers=admin_token)).status_code == 401

    last = await api.patch(
        f"/api/v1/users/{team.user_ids['super']}", json={"role": "agent"}, headers=team.as_("super")
    )
    assert last.status_code == 409
    same = await api.patch(
        f"/api/v1/users/{team.user_ids['agent']}", json={"online": True}, headers=team.as_("super")
    )
    assert same.json()["online"] is True
    assert (await api.get("/api/v1/users", headers=team.as_("agent"))).status_code == 200


async def test_revoking_sessions_and_deleting_users(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    agent = team.as_("agent")
    admin = team.as_("admin")

    revoked = await api.post(
        f"/api/v1/users/{team.user_ids['agent']}/revoke-sessions", headers=admin
    )
    assert revoked.status_code == 204
    assert (await api.get("/api/v1/tags", headers=agent)).status_code == 401
    self_delete = await api.delete(f"/api/v1/users/{team.user_ids['admin']}", headers=admin)
    foreign = await api.delete(f"/api/v1/users/{other.user_ids['agent']}", headers=admin)
    by_supervisor = await api.delete(
        f"/api/v1/users/{team.user_ids['agent']}", headers=team.as_("supervisor")
    )
    deleted = await api.delete(f"/api/v1/users/{team.user_ids['supervisor']}", headers=admin)

    assert self_delete.status_code == 409
    assert foreign.status_code == 404
    assert by_supervisor.status_code == 403
    assert deleted.status_code == 204
    gone = await api.get(f"/api/v1/users/{team.user_ids['supervisor']}", headers=admin)
    assert gone.status_code == 404


# Channels --------------------------------------------------------------------------------


def _telegram_setup() -> tuple[str, dict[str, str]]:
    bot_id = str(uuid.uuid4().int)[:12]
    return bot_id, {
        "bot_token": f"{bot_id}:AAH{uuid.uuid4().hex}",
        "webhook_secret": f"hook-{uuid.uuid4().hex}",
    }


async def test_a_channel_is_connected_with_write_only_secrets(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    bot_id, secrets = _telegram_setup()

    response = await api.post(
        "/api/v1/channels",
        json={"type": "telegram", "name": "Bot", "config": {"rate_per_s": 5}, "secrets": secrets},
        headers=team.as_("admin"),
    )

    assert response.status_code == 201, response.text
    channel = response.json()
    assert channel["external_id"] == bot_id
    assert channel["config"]["rate_per_s"] == 5
    assert channel["has_secrets"] == {"bot_token": True, "webhook_secret": True}
    base = str(SETTINGS.BACKEND_URL).rstrip("/")
    assert channel["webhook_url"] == f"{base}/webhooks/telegram/{channel['id']}"
    listed = await api.get("/api/v1/channels?limit=100", headers=team.as_("agent"))
    one = await api.get(f"/api/v1/channels/{channel['id']}", headers=team.as_("agent"))
    for shown in (response.text, listed.text, one.text):
        assert all(secret not in shown for secret in secrets.values())
        assert f"tg-token-{team.label}" not in shown and f"wa-token-{team.label}" not in shown
    stored = await scalar(db, "SELECT secrets::text FROM channels WHERE id = :id", id=channel["id"])
    assert all(secret not in str(stored) for secret in secrets.values())  # encrypted at rest
    assert open_secrets(str(stored)).model_dump(exclude_none=True) == secrets


async def test_channel_setup_errors_name_the_field_without_echoing_secrets(
    api: httpx.AsyncClient, team: Team
) -> None:
    bad_token = "not-a-bot-token-" + uuid.uuid4().hex
    h = team.as_("admin")

    invalid = await api.post(
        "/api/v1/channels",
        json={"type": "telegram", "name": "Bot", "secrets": {"bot_token": bad_token}},
        headers=h,
    )
    misplaced = await api.post(
        "/api/v1/channels",
        json={"type": "telegram", "name": "Bot", "config": {"bot_token": bad_token}},
        headers=h,
    )
    unknown_type = await api.post(
        "/api/v1/channels", json={"type": "fax", "name": "Fax"}, headers=h
    )

    assert invalid.status_code == 422
    assert set(error_fields(invalid)) == {"secrets.bot_token", "config.webhook_secret"}
    assert misplaced.status_code == 422 and error_fields(misplaced) == ["config.bot_token"]
    assert unknown_type.status_code == 422 and error_fields(unknown_type) == ["type"]
    assert bad_token not in invalid.text + misplaced.text


async def test_patching_a_channel_merges_secrets_and_keeps_history_safe(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    _, secrets = _telegram_setup()
    h = team.as_("admin")
    created = await api.post(
        "/api/v1/channels",
        json={"type": "telegram", "name": "Bot", "secrets": secrets},
        headers=h,
    )
    url = f"/api/v1/channels/{created.json()['id']}"
    new_secret = f"rotated-{uuid.uuid4().hex}"
    contact_id = await scalar(
        db, "INSERT INTO contacts (tenant_id, name) VALUES (:t, 'C') RETURNING id", t=team.tenant_id
    )
    await scalar(
        db,
        "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol)"
        " VALUES (:t, :ch, :c, 'closed', :p) RETURNING id",
        t=team.tenant_id,
        ch=team.channel_id,
        c=contact_id,
        p=f"P-{uuid.uuid4().hex}",
    )

    rotated = await api.patch(
        url, json={"name": "Bot 2", "secrets": {"webhook_secret": new_secret}}, headers=h
    )
    paused = await api.patch(url, json={"status": "disconnected"}, headers=h)
    wrong_secret = await api.patch(url, json={"secrets": {"access_token": "x"}}, headers=h)
    by_supervisor = await api.patch(url, json={"name": "X"}, headers=team.as_("supervisor"))
    in_use = await api.delete(f"/api/v1/channels/{team.channel_id}", headers=h)
    taken_name = await api.patch(url, json={"name": f"whatsapp {team.label}"}, headers=h)

    assert rotated.status_code == 200, rotated.text
    assert new_secret not in rotated.text
    stored = await scalar(
        db, "SELECT secrets::text FROM channels WHERE id = :id", id=created.json()["id"]
    )
    assert new_secret not in str(stored)
    opened = open_secrets(str(stored)).model_dump(exclude_none=True)
    assert opened == {**secrets, "webhook_secret": new_secret}
    assert paused.json()["status"] == "disconnected" and paused.json()["name"] == "Bot 2"
    assert wrong_secret.status_code == 422 and error_fields(wrong_secret) == [
        "secrets.access_token"
    ]
    assert by_supervisor.status_code == 403
    assert taken_name.status_code == 409
    # A channel with tickets keeps them: deleting is refused, disconnecting is the way.
    assert in_use.status_code == 409
    assert "disconnected" in in_use.json()["error"]["message"]
    assert (await api.delete(url, headers=h)).status_code == 204
    assert (await api.get(url, headers=h)).status_code == 404


# Settings --------------------------------------------------------------------------------


async def test_settings_have_typed_values_and_defaults(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    listed = await api.get("/api/v1/settings", headers=team.as_("agent"))
    assert listed.status_code == 200
    values = {s["key"]: s for s in listed.json()["items"]}
    assert values["agents_see_unqueued"]["value"] is True
    assert values["agents_see_unqueued"]["is_default"] is True
    assert {
        "auto_close_after_h",
        "out_of_hours_message",
        "hide_bot_tickets_from_agents",
        "signature_on_reply",
        "business_hours",
    } <= set(values)

    h = team.as_("admin")
    changed = await api.put(
        "/api/v1/settings/agents_see_unqueued", json={"value": False}, headers=h
    )
    as_text = await api.put(
        "/api/v1/settings/agents_see_unqueued", json={"value": "false"}, headers=h
    )
    hours = await api.put("/api/v1/settings/auto_close_after_h", json={"value": 0}, headers=h)
    unknown = await api.put("/api/v1/settings/no_such_key", json={"value": 1}, headers=h)
    by_agent = await api.put(
        "/api/v1/settings/signature_on_reply", json={"value": True}, headers=team.as_("agent")
    )

    assert changed.status_code == 200
    assert (changed.json()["value"], changed.json()["is_default"]) == (False, False)
    assert as_text.status_code == 422 and error_fields(as_text) == ["value"]
    assert hours.status_code == 422 and error_fields(hours) == ["value"]
    assert unknown.status_code == 404
    assert by_agent.status_code == 403
    theirs = await api.get("/api/v1/settings/agents_see_unqueued", headers=other.as_("agent"))
    assert theirs.json()["value"] is True  # another tenant's value is its own
    reset = await api.delete("/api/v1/settings/agents_see_unqueued", headers=h)
    assert (reset.json()["value"], reset.json()["is_default"]) == (True, True)


async def test_business_hours_are_validated_as_a_structure(
    api: httpx.AsyncClient, team: Team
) -> None:
    h = team.as_("admin")
    url = "/api/v1/settings/business_hours"
    week = {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]}

    ok = await api.put(
        url, json={"value": {"time_zone": "America/Sao_Paulo", "week": week}}, headers=h
    )
    bad_zone = await api.put(url, json={"value": {"time_zone": "Mars/Base", "week": {}}}, headers=h)
    backwards = await api.put(
        url,
        json={"value": {"time_zone": "UTC", "week": {"tue": [{"start": "18:00", "end": "09:00"}]}}},
        headers=h,
    )
    overlap = await api.put(
        url,
        json={
            "value": {
                "time_zone": "UTC",
                "week": {
                    "wed": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
                },
            }
        },
        headers=h,
    )

    assert ok.status_code == 200, ok.text
    assert ok.json()["value"] == {"time_zone": "America/Sao_Paulo", "week": week}
    assert bad_zone.status_code == 422 and error_fields(bad_zone) == ["value.time_zone"]
    assert backwards.status_code == 422 and error_fields(backwards) == ["value.week.tue.0"]
    assert overlap.status_code == 422 and error_fields(overlap) == ["value"]
    still = await api.get(url, headers=h)
    assert still.json()["value"]["time_zone"] == "America/Sao_Paulo"


# Fast replies ----------------------------------------------------------------------------


async def test_fast_replies_crud(api: httpx.AsyncClient, team: Team, other: Team) -> None:
    h = team.as_("supervisor")
    media = [{"url": "https://cdn.example/menu.pdf", "type": "document"}]
    created = await api.post(
        "/api/v1/fast-replies",
        json={"shortcut": "menu", "body": "Our menu", "media": media},
        headers=h,
    )
    assert created.status_code == 201, created.text
    url = f"/api/v1/fast-replies/{created.json()['id']}"

    duplicate = await api.post(
        "/api/v1/fast-replies", json={"shortcut": "menu", "body": "again"}, headers=h
    )
    elsewhere = await api.post(
        "/api/v1/fast-replies", json={"shortcut": "menu", "body": "x"}, headers=other.as_("admin")
    )
    changed = await api.patch(url, json={"body": "New menu", "media": []}, headers=h)
    found = await api.get("/api/v1/fast-replies?search=new%20menu", headers=team.as_("agent"))
    by_agent = await api.post(
        "/api/v1/fast-replies", json={"shortcut": "x", "body": "x"}, headers=team.as_("agent")
    )

    assert created.json()["media"] == media
    assert duplicate.status_code == 409
    assert elsewhere.status_code == 201
    assert (changed.json()["body"], changed.json()["media"]) == ("New menu", [])
    assert [r["id"] for r in found.json()["items"]] == [created.json()["id"]]
    assert by_agent.status_code == 403
    assert (await api.delete(url, headers=h)).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shortcut": "a", "body": "x" * 4097}, "body"),
        ({"shortcut": "two words", "body": "x"}, "shortcut"),
        (
            {"shortcut": "a", "body": "x", "media": [{"url": "ftp://x", "type": "image"}]},
            "media.0.url",
        ),
        (
            {"shortcut": "a", "body": "x", "media": [{"url": "https://x.io", "type": "gif"}]},
            "media.0.type",
        ),
    ],
)
async def test_invalid_fast_replies_name_the_field(
    api: httpx.AsyncClient, team: Team, body: dict[str, object], field: str
) -> None:
    response = await api.post("/api/v1/fast-replies", json=body, headers=team.as_("admin"))

    assert response.status_code == 422
    assert error_fields(response) == [field]


# Malformed requests ----------------------------------------------------------------------

_MALFORMED_BODIES: list[object] = [
    None,
    [],
    "text",
    {"name": None, "value": None},
    {"name": "\u0000", "shortcut": "\u0000", "body": "\ud800", "value": "\u0000"},
    {"name": 10**30, "user_ids": [10**30], "tag_ids": [-1], "from_contact_id": 10**30},
    {"config": {"smtp_username": "a\u0000b"}, "secrets": {"x": {"y": [1]}}, "type": "email"},
    {"custom_fields": {"\u0000": "v"}, "phone": "\u0000", "email": "\ud800@x.io"},
    {"value": {"time_zone": "\u0000", "week": {"mon": "x"}}, "user_id": "1"},
]
_MALFORMED_QUERIES = [
    "?limit=0",
    "?limit=abc",
    "?search=%00",
    "?cursor=%00",
    "?tag_id=99999999999999999999",
]


async def test_no_malformed_request_gets_a_500(api: httpx.AsyncClient, team: Team) -> None:
    h = team.as_("super")
    ids = {"users": team.user_ids["agent"], "channels": team.telegram_channel_id}
    for resource, body in (
        ("contacts", {"name": "Fuzz"}),
        ("tags", {"name": "fuzz"}),
        ("queues", {"name": "fuzz"}),
        ("fast-replies", {"shortcut": "fuzz", "body": "x"}),
        (
            "tenants",
            {
                "name": "Fuzz",
                "admin": {
                    "name": "F",
                    "email": f"f-{team.label}@x.test",
                    "password": "long enough pw",
                },
            },
        ),
    ):
        created = await api.post(f"/api/v1/{resource}", json=body, headers=h)
        assert created.status_code == 201, created.text
        ids[resource] = created.json().get("id") or created.json()["tenant"]["id"]
    specs = [spec for router in ROUTERS for spec, _ in router.specs]
    for spec in sorted(specs, key=lambda s: s.method == "DELETE"):  # deletions last
        resource = spec.path.split("/")[3]
        path = spec.path.replace("{id}", str(ids.get(resource, 1)))
        path = path.replace("{key:str}", "business_hours")
        if spec.method == "GET":
            for query in _MALFORMED_QUERIES:
                response = await api.get(path + query, headers=h)
                assert response.status_code < 500, (spec.path, query, response.text)
            continue
        for body in _MALFORMED_BODIES:
            response = await api.request(spec.method, path, content=json.dumps(body), headers=h)
            assert response.status_code < 500, (spec.method, spec.path, body, response.text)
        raw = await api.request(spec.method, path, content=b"{not json", headers=h)
        assert raw.status_code < 500, (spec.path, raw.text)
