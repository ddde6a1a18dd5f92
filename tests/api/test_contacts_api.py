"""Contacts over the API: the card, search, edits, tags, wallet, deletion and merging duplicates."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.db import async_system_tx
from tests.api.resources_helpers import Team, error_fields, scalar

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.api.resources_fixtures"]  # the api, team and other fixtures


def _phone() -> str:
    """A fresh Brazilian mobile number in E.164."""
    return "+55119" + str(uuid.uuid4().int)[:8]


async def _create(api: httpx.AsyncClient, team: Team, **body: object) -> dict[str, object]:
    response = await api.post("/api/v1/contacts", json=body, headers=team.as_("agent"))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def _insert(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


def _ticket(conn: Connection, team: Team, channel_id: int, contact_id: int, status: str) -> int:
    return _insert(
        conn,
        "INSERT INTO tickets (tenant_id, channel_id, contact_id, status, protocol)"
        " VALUES (:t, :ch, :c, :s, :p)",
        t=team.tenant_id,
        ch=channel_id,
        c=contact_id,
        s=status,
        p=f"T-{uuid.uuid4().hex}",
    )


def _message(conn: Connection, team: Team, ticket_id: int, channel_id: int, contact: int) -> int:
    return _insert(
        conn,
        "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, type,"
        " body, status) VALUES (:t, :tk, :c, :ch, 'in', 'text', 'hi', 'received')",
        t=team.tenant_id,
        tk=ticket_id,
        c=contact,
        ch=channel_id,
    )


def _identity(conn: Connection, team: Team, contact_id: int, channel_type: str, key: str) -> None:
    conn.execute(
        text(
            "INSERT INTO contact_identities (tenant_id, contact_id, channel_type, identity_key,"
            " external_id) VALUES (:t, :c, :ct, :k, :k)"
        ),
        {"t": team.tenant_id, "c": contact_id, "ct": channel_type, "k": key},
    )


# Create and read -------------------------------------------------------------------------


async def test_a_created_contact_has_its_phone_in_e164_and_the_full_card(
    api: httpx.AsyncClient, team: Team
) -> None:
    digits = _phone()[1:]
    spaced = f"+{digits[:2]} ({digits[2:4]}) {digits[4:9]}-{digits[9:]}"

    created = await _create(
        api,
        team,
        name=" Maria ",
        phone=spaced,
        email="Maria@Example.COM",
        custom_fields={"plan": "gold"},
    )

    assert created["phone"] == f"+{digits}"
    assert created["name"] == "Maria"
    assert created["email"] == "maria@example.com"
    card = (await api.get(f"/api/v1/contacts/{created['id']}", headers=team.as_("agent"))).json()
    assert card == created
    # The read API's card, plus what the CRM adds.
    assert set(card) == {
        "id",
        "name",
        "phone",
        "email",
        "is_group",
        "opted_out",
        "identities",
        "created_at",
        "updated_at",
        "custom_fields",
        "tags",
        "wallet_user_id",
        "merged_into_id",
    }
    assert card["custom_fields"] == {"plan": "gold"}
    assert (card["tags"], card["identities"], card["wallet_user_id"]) == ([], [], None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "phone": "call me"}, "phone"),
        ({"name": "X", "phone": "123"}, "phone"),
        ({"phone": "+5511987654321"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "X", "email": "not-an-email"}, "email"),
        ({"name": "X", "nickname": "x"}, "nickname"),
        ({"name": "bad\u0000name"}, "name"),
        ({"name": "X", "custom_fields": {"k" * 101: "v"}}, "custom_fields"),
        ({"name": "X", "custom_fields": {"k": "v" * 1001}}, "custom_fields.k"),
    ],
)
async def test_invalid_contacts_are_refused_naming_the_field(
    api: httpx.AsyncClient, team: Team, body: dict[str, object], field: str
) -> None:
    response = await api.post("/api/v1/contacts", json=body, headers=team.as_("agent"))

    assert response.status_code == 422, response.text
    assert any(f.startswith(field) for f in error_fields(response)), response.text


async def test_a_phone_already_taken_is_a_conflict_naming_its_contact(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    phone = _phone()
    first = await _create(api, team, name="First", phone=phone)

    again = await api.post(
        "/api/v1/contacts", json={"name": "Second", "phone": phone[1:]}, headers=team.as_("agent")
    )

    assert again.status_code == 409
    assert str(first["id"]) in again.json()["error"]["message"]
    # Another tenant may have the same person.
    assert (await _create(api, other, name="Elsewhere", phone=phone))["phone"] == phone


# Update ----------------------------------------------------------------------------------


async def test_patch_changes_only_what_is_sent_and_replaces_custom_fields(
    api: httpx.AsyncClient, team: Team
) -> None:
    created = await _create(
        api, team, name="Ana", email="ana@x.test", custom_fields={"plan": "gold", "city": "SP"}
    )
    url = f"/api/v1/contacts/{created['id']}"

    response = await api.patch(
        url,
        json={"email": None, "custom_fields": {"plan": "silver"}, "opted_out": True},
        headers=team.as_("agent"),
    )

    assert response.status_code == 200, response.text
    card = response.json()
    assert card["name"] == "Ana"
    assert card["email"] is None
    assert card["custom_fields"] == {"plan": "silver"}
    assert card["opted_out"] is True
    refused = await api.patch(url, json={"name": None}, headers=team.as_("agent"))
    assert refused.status_code == 422 and error_fields(refused) == ["name"]


# List ------------------------------------------------------------------------------------


async def test_list_searches_filters_and_pages_without_gaps(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    phone = _phone()
    ids = [(await _create(api, team, name=f"Pager {i}"))["id"] for i in range(5)]
    maria = await _create(api, team, name="Maria Search", phone=phone)
    await _create(api, other, name="Maria Search")
    tag = await api.post("/api/v1/tags", json={"name": "vip"}, headers=team.as_("admin"))
    await api.put(
        f"/api/v1/contacts/{ids[0]}/tags",
        json={"tag_ids": [tag.json()["id"]]},
        headers=team.as_("agent"),
    )
    await api.patch(
        f"/api/v1/contacts/{ids[1]}", json={"opted_out": True}, headers=team.as_("agent")
    )
    headers = team.as_("agent")

    async def listed(query: str) -> list[object]:
        response = await api.get(f"/api/v1/contacts?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await listed("search=maria%20se") == [maria["id"]]
    assert await listed(f"search={phone[-6:]}") == [maria["id"]]
    assert await listed(f"tag_id={tag.json()['id']}") == [ids[0]]
    assert ids[1] in await listed("opted_out=true")
    assert ids[1] not in await listed("opted_out=false")
    seen: list[object] = []
    cursor = ""
    for _ in range(10):
        response = await api.get(f"/api/v1/contacts?search=pager&limit=2{cursor}", headers=headers)
        page = response.json()
        seen += [c["id"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(ids, key=lambda i: -int(str(i)))  # newest first, each once
    bad = await api.get("/api/v1/contacts?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and error_fields(bad) == ["cursor"]


# Tags and wallet -------------------------------------------------------------------------


async def test_tags_are_set_as_a_whole_and_foreign_tags_are_refused(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    contact = await _create(api, team, name="Tagged")
    mine = [
        (await api.post("/api/v1/tags", json={"name": n}, headers=team.as_("admin"))).json()["id"]
        for n in (f"a-{team.label}", f"b-{team.label}")
    ]
    theirs = (await api.post("/api/v1/tags", json={"name": "x"}, headers=other.as_("admin"))).json()
    url = f"/api/v1/contacts/{contact['id']}/tags"

    both = await api.put(url, json={"tag_ids": mine}, headers=team.as_("agent"))
    one = await api.put(url, json={"tag_ids": [mine[1]]}, headers=team.as_("agent"))
    foreign = await api.put(
        url, json={"tag_ids": [mine[0], theirs["id"]]}, headers=team.as_("agent")
    )

    assert [t["id"] for t in both.json()["tags"]] == mine
    assert [t["id"] for t in one.json()["tags"]] == [mine[1]]
    assert foreign.status_code == 422 and error_fields(foreign) == ["tag_ids.1"]
    card = await api.get(f"/api/v1/contacts/{contact['id']}", headers=team.as_("agent"))
    assert [t["id"] for t in card.json()["tags"]] == [mine[1]]  # the refused call changed nothing


async def test_the_wallet_owner_must_be_a_user_of_the_tenant(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    contact = await _create(api, team, name="Owned")
    url = f"/api/v1/contacts/{contact['id']}/wallet"

    owned = await api.put(url, json={"user_id": team.user_ids["agent"]}, headers=team.as_("agent"))
    foreign = await api.put(
        url, json={"user_id": other.user_ids["agent"]}, headers=team.as_("agent")
    )
    cleared = await api.put(url, json={"user_id": None}, headers=team.as_("agent"))

    assert owned.json()["wallet_user_id"] == team.user_ids["agent"]
    assert foreign.status_code == 422 and error_fields(foreign) == ["user_id"]
    assert cleared.json()["wallet_user_id"] is None


# Delete and isolation --------------------------------------------------------------------


async def test_a_contact_with_tickets_cannot_be_deleted(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    with_ticket = await _create(api, team, name="Has history")
    without = await _create(api, team, name="Typo")
    async with async_system_tx(db) as conn:
        await conn.run_sync(
            lambda c: _ticket(c, team, team.channel_id, int(str(with_ticket["id"])), "closed")
        )

    refused = await api.delete(f"/api/v1/contacts/{with_ticket['id']}", headers=team.as_("agent"))
    deleted = await api.delete(f"/api/v1/contacts/{without['id']}", headers=team.as_("agent"))

    assert refused.status_code == 409
    assert deleted.status_code == 204
    gone = await api.get(f"/api/v1/contacts/{without['id']}", headers=team.as_("agent"))
    assert gone.status_code == 404


async def test_another_tenants_contact_is_not_found_for_every_operation(
    api: httpx.AsyncClient, team: Team, other: Team
) -> None:
    theirs = await _create(api, other, name="Secret Customer", email="secret@x.test")
    mine = await _create(api, team, name="Mine")
    url = f"/api/v1/contacts/{theirs['id']}"
    h = team.as_("admin")

    responses = [
        await api.get(url, headers=h),
        await api.patch(url, json={"name": "Hijack"}, headers=h),
        await api.put(f"{url}/tags", json={"tag_ids": []}, headers=h),
        await api.put(f"{url}/wallet", json={"user_id": None}, headers=h),
        await api.post(f"{url}/merge", json={"from_contact_id": mine["id"]}, headers=h),
        await api.post(
            f"/api/v1/contacts/{mine['id']}/merge",
            json={"from_contact_id": theirs["id"]},
            headers=h,
        ),
        await api.delete(url, headers=h),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert all("Secret" not in r.text for r in responses)
    still = await api.get(url, headers=other.as_("agent"))
    assert still.json()["name"] == "Secret Customer"


# Merge -----------------------------------------------------------------------------------


async def test_merge_moves_everything_and_never_leaves_two_live_tickets(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    source_phone, target_phone = _phone(), _phone()
    target = await _create(
        api, team, name="Maria", phone=target_phone, custom_fields={"plan": "gold"}
    )
    source = await _create(
        api, team, name="Maria S.", phone=source_phone, custom_fields={"plan": "x", "city": "SP"}
    )
    t_id, s_id = int(str(target["id"])), int(str(source["id"]))
    tags = [
        (await api.post("/api/v1/tags", json={"name": n}, headers=team.as_("admin"))).json()["id"]
        for n in ("t-tag", "s-tag")
    ]
    await api.put(
        f"/api/v1/contacts/{t_id}/tags", json={"tag_ids": [tags[0]]}, headers=team.as_("agent")
    )
    await api.put(
        f"/api/v1/contacts/{s_id}/tags", json={"tag_ids": tags}, headers=team.as_("agent")
    )
    await api.put(
        f"/api/v1/contacts/{s_id}/wallet",
        json={"user_id": team.user_ids["agent"]},
        headers=team.as_("agent"),
    )

    def seed(conn: Connection) -> dict[str, int]:
        _identity(conn, team, t_id, "whatsapp", target_phone)
        _identity(conn, team, s_id, "whatsapp", source_phone)
        _identity(conn, team, s_id, "telegram", f"tg-{team.label}")
        ids = {
            "t_live_wa": _ticket(conn, team, team.channel_id, t_id, "open"),
            "s_live_wa": _ticket(conn, team, team.channel_id, s_id, "pending"),
            "s_closed_wa": _ticket(conn, team, team.channel_id, s_id, "closed"),
            "s_live_tg": _ticket(conn, team, team.telegram_channel_id, s_id, "open"),
        }
        for key in ("s_live_wa", "s_closed_wa", "s_live_tg"):
            channel = team.telegram_channel_id if key == "s_live_tg" else team.channel_id
            _message(conn, team, ids[key], channel, s_id)
        return ids

    async with async_system_tx(db) as conn:
        tickets = await conn.run_sync(seed)

    response = await api.post(
        f"/api/v1/contacts/{t_id}/merge",
        json={"from_contact_id": s_id},
        headers=team.as_("supervisor"),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["closed_ticket_ids"] == [tickets["s_live_wa"]]
    assert body["moved_ticket_ids"] == sorted(
        [tickets["s_live_wa"], tickets["s_closed_wa"], tickets["s_live_tg"]]
    )
    assert (body["moved_identities"], body["moved_messages"]) == (2, 3)
    card = body["contact"]
    assert card["phone"] == target_phone  # the target keeps its own number
    assert {(i["channel_type"], i["external_id"]) for i in card["identities"]} == {
        ("whatsapp", target_phone),
        ("whatsapp", source_phone),
        ("telegram", f"tg-{team.label}"),
    }
    assert card["custom_fields"] == {"plan": "gold", "city": "SP"}  # the target wins a clash
    assert [t["id"] for t in card["tags"]] == tags
    assert card["wallet_user_id"] == team.user_ids["agent"]

    async with async_system_tx(db) as conn:
        live = (
            await conn.execute(
                text(
                    "SELECT channel_id, count(*) FROM tickets WHERE contact_id = :c"
                    " AND status IN ('pending', 'open') GROUP BY channel_id"
                ),
                {"c": t_id},
            )
        ).all()
        left_behind = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM tickets WHERE contact_id = :s)"
                    " + (SELECT count(*) FROM messages WHERE contact_id = :s)"
                    " + (SELECT count(*) FROM contact_identities WHERE contact_id = :s)"
                ),
                {"s": s_id},
            )
        ).scalar_one()
        events = (
            await conn.execute(
                text("SELECT ticket_id, type FROM ticket_events WHERE ticket_id = ANY(:ids)"),
                {"ids": list(tickets.values())},
            )
        ).all()
        outbox = (
            (
                await conn.execute(
                    text(
                        "SELECT payload->>'merged_contact_id' FROM outbox WHERE tenant_id = :t"
                        " AND topic = 'contact.updated'"
                    ),
                    {"t": team.tenant_id},
                )
            )
            .scalars()
            .all()
        )
    assert sorted(live) == sorted([(team.channel_id, 1), (team.telegram_channel_id, 1)])
    assert left_behind == 0
    assert (tickets["s_live_wa"], "closed") in events
    assert {t for t, kind in events if kind == "contact_merged"} == set(body["moved_ticket_ids"])
    assert outbox == [str(s_id)]

    merged = (await api.get(f"/api/v1/contacts/{s_id}", headers=team.as_("agent"))).json()
    assert (merged["merged_into_id"], merged["phone"]) == (t_id, None)
    listed = await api.get("/api/v1/contacts?search=maria", headers=team.as_("agent"))
    assert [c["id"] for c in listed.json()["items"]] == [t_id]
    # The source's number is free again: a new contact may have it.
    assert (await _create(api, team, name="New owner", phone=source_phone))["phone"] == source_phone


async def test_the_target_takes_over_the_phone_it_lacks(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    phone = _phone()
    target = await _create(api, team, name="No phone", email="np@x.test")
    source = await _create(api, team, name="Dup", phone=phone)

    response = await api.post(
        f"/api/v1/contacts/{target['id']}/merge",
        json={"from_contact_id": source["id"]},
        headers=team.as_("admin"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["contact"]["phone"] == phone
    assert await scalar(db, "SELECT phone FROM contacts WHERE id = :id", id=source["id"]) is None


async def test_merge_refusals(api: httpx.AsyncClient, team: Team) -> None:
    a = await _create(api, team, name="A")
    b = await _create(api, team, name="B")
    c = await _create(api, team, name="C")
    h = team.as_("supervisor")

    itself = await api.post(
        f"/api/v1/contacts/{a['id']}/merge", json={"from_contact_id": a["id"]}, headers=h
    )
    by_agent = await api.post(
        f"/api/v1/contacts/{a['id']}/merge",
        json={"from_contact_id": b["id"]},
        headers=team.as_("agent"),
    )
    first = await api.post(
        f"/api/v1/contacts/{a['id']}/merge", json={"from_contact_id": b["id"]}, headers=h
    )
    twice = await api.post(
        f"/api/v1/contacts/{c['id']}/merge", json={"from_contact_id": b["id"]}, headers=h
    )
    into_merged = await api.post(
        f"/api/v1/contacts/{b['id']}/merge", json={"from_contact_id": c["id"]}, headers=h
    )
    no_body = await api.post(f"/api/v1/contacts/{a['id']}/merge", json={}, headers=h)

    assert itself.status_code == 422 and error_fields(itself) == ["from_contact_id"]
    assert by_agent.status_code == 403
    assert first.status_code == 200
    assert twice.status_code == 409 and into_merged.status_code == 409
    assert no_body.status_code == 422 and error_fields(no_body) == ["from_contact_id"]
