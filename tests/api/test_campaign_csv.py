"""CSV imports as an operator meets them: bad rows listed by line with the reason, good rows
kept as contacts a campaign can then be sent to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.campaigns.csv_import import MAX_CSV_BYTES, MAX_CSV_ROWS
from tests.api.campaigns_helpers import BASE, Person, add_people, build_campaigns_app, create, rows
from tests.api.resources_helpers import Team, error_fields, make_team

pytestmark = pytest.mark.anyio

IMPORTS = f"{BASE}/imports"
FILE = (
    "Phone,Name,City\n"  # header in any case, extra columns ignored
    "+55 11 98765-0001,Ana Lima,SP\n"
    ",No Phone,RJ\n"
    "12345,Too Short,BH\n"
    "5511987650001,Ana Again,SP\n"
    "\n"
    "+1 (415) 555-0123,Carla,SF\n"
    "551187650002,Old Nine Digit,SP\n"
)


@pytest.fixture
async def api(db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_campaigns_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://flowdesk.test") as http:
        yield http


@pytest.fixture
async def team(db: AsyncEngine) -> Team:
    return await make_team(db)


@pytest.fixture
async def other(db: AsyncEngine) -> Team:
    return await make_team(db)


async def upload(
    api: httpx.AsyncClient,
    team: Team,
    content: str | bytes,
    *,
    channel_id: int | None = None,
    content_type: str = "text/csv",
    filename: str | None = None,
) -> httpx.Response:
    params: dict[str, str | int] = {"channel_id": channel_id or team.channel_id}
    if filename is not None:
        params["filename"] = filename
    return await api.post(
        IMPORTS,
        params=params,
        content=content,
        headers={**team.as_("supervisor"), "Content-Type": content_type},
    )


async def test_bad_rows_are_listed_by_line_and_good_rows_kept(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    response = await upload(api, team, FILE)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["total_rows"], result["valid"], result["created"]) == (6, 3, 3)
    assert result["errors"] == [
        {"line": 3, "reason": "missing phone"},
        {"line": 4, "reason": "invalid phone number"},
        {"line": 5, "reason": "duplicate phone (same number as line 2)"},
    ]
    assert result["error_count"] == 3 and result["errors_truncated"] is False
    people = await rows(
        db,
        "SELECT c.phone, c.name, ci.external_id FROM contacts c"
        " JOIN contact_identities ci ON ci.contact_id = c.id AND ci.channel_type = 'whatsapp'"
        " WHERE c.tenant_id = :t ORDER BY c.phone",
        t=team.tenant_id,
    )
    assert people == [
        ("+14155550123", "Carla", "14155550123"),
        ("+5511987650001", "Ana Lima", "5511987650001"),
        ("+5511987650002", "Old Nine Digit", "5511987650002"),  # Brazil's ninth digit added
    ]
    again = await api.get(f"{IMPORTS}/{result['id']}", headers=team.as_("supervisor"))
    assert again.status_code == 200 and again.json() == result


async def test_an_import_becomes_a_campaign_audience(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    imported = (await upload(api, team, FILE, filename="clientes maio.csv")).json()
    assert (imported["status"], imported["filename"]) == (
        "completed_with_errors",
        "clientes maio.csv",
    )
    assert imported["campaign_id"] is None
    assert imported["created_by"] == team.user_ids["supervisor"]
    campaign = await create(api, db, team, audience={"csv_import_id": imported["id"]})
    started = await api.post(f"{BASE}/{campaign['id']}/start", json={}, headers=team.as_("admin"))
    assert started.status_code == 200, started.text
    assert started.json()["counts"]["pending"] == 3
    assert started.json()["counts"]["total"] == 3
    # The import remembers the first campaign that targeted it; a second one leaves it be.
    await create(api, db, team, audience={"csv_import_id": imported["id"]})
    again = await api.get(f"{IMPORTS}/{imported['id']}", headers=team.as_("supervisor"))
    assert again.json()["campaign_id"] == campaign["id"]
    stored = await rows(
        db,
        "SELECT rows_total, rows_valid, rows_invalid, contacts_created, status "
        "FROM campaign_imports WHERE id = :i",
        i=imported["id"],
    )
    assert stored == [(6, 3, 3, 3, "completed_with_errors")]
    lines = await rows(
        db,
        "SELECT line FROM campaign_import_contacts WHERE import_id = :i ORDER BY line",
        i=imported["id"],
    )
    assert [line for (line,) in lines] == [2, 7, 8]


async def test_every_bad_row_is_kept_and_read_a_thousand_at_a_time(
    api: httpx.AsyncClient, team: Team
) -> None:
    content = "phone\n" + "12345\n" * 1_500 + "+5511987650001\n"
    imported = (await upload(api, team, content)).json()
    assert (imported["valid"], imported["error_count"], imported["status"]) == (
        1,
        1_500,
        "completed_with_errors",
    )
    assert len(imported["errors"]) == 1_000 and imported["errors_truncated"] is True
    assert imported["errors"][-1] == {"line": 1_001, "reason": "invalid phone number"}
    rest = await api.get(
        f"{IMPORTS}/{imported['id']}",
        params={"errors_after_line": 1_001},
        headers=team.as_("supervisor"),
    )
    page = rest.json()
    assert [e["line"] for e in page["errors"]] == list(range(1_002, 1_502))
    assert page["errors_truncated"] is False
    bad = await api.get(
        f"{IMPORTS}/{imported['id']}",
        params={"errors_after_line": -1},
        headers=team.as_("supervisor"),
    )
    assert bad.status_code == 422 and error_fields(bad) == ["errors_after_line"]


async def test_a_file_without_a_valid_row_is_recorded_as_such(
    api: httpx.AsyncClient, team: Team
) -> None:
    imported = (await upload(api, team, "phone\n12345\n")).json()
    assert (imported["valid"], imported["status"]) == (0, "no_valid_rows")
    assert imported["errors"] == [{"line": 2, "reason": "invalid phone number"}]


async def test_a_known_number_keeps_its_contact_and_name(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    known = await add_people(db, team, {"ana": Person("Ana (VIP)", "+5511987650001")})
    result = (await upload(api, team, "phone,name\n5511987650001,Someone Else\n")).json()
    assert (result["valid"], result["created"]) == (1, 0)
    names = await rows(db, "SELECT id, name FROM contacts WHERE tenant_id = :t", t=team.tenant_id)
    assert names == [(known["ana"], "Ana (VIP)")]


async def test_the_json_form_and_an_sms_channel(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    sms = (
        await rows(
            db,
            "INSERT INTO channels (tenant_id, type, name, external_id) VALUES"
            " (:t, 'sms', 'SMS', :x) RETURNING id",
            t=team.tenant_id,
            x=f"+1415555{team.tenant_id:04d}",
        )
    )[0][0]
    response = await api.post(
        IMPORTS,
        params={"channel_id": sms},
        json={"csv": "name;phone\nDan;+1 415 555 0199\n"},
        headers=team.as_("admin"),
    )
    assert response.status_code == 201, response.text
    identity = await rows(
        db,
        "SELECT channel_type, identity_key, external_id FROM contact_identities"
        " WHERE tenant_id = :t",
        t=team.tenant_id,
    )
    assert identity == [("sms", "+14155550199", "+14155550199")]  # SMS addresses by E.164


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        ("5511987650001,Ana\n", "text/csv", 422, "header"),
        ("", "text/csv", 422, "Send the CSV file"),
        ("phone\n1\n", "application/pdf", 415, "text/csv"),
        ('{"file": "phone"}', "application/json", 422, "csv"),
        ("phone,name\n5511987650001,Jos\xe9\n".encode("latin-1"), "text/csv", 422, "UTF-8"),
        ("phone\n" + "x\n" * (MAX_CSV_ROWS + 1), "text/csv", 422, "200000 rows"),
        ("phone\n1\n", "text/csv; charset=klingon", 415, "Unknown charset"),
        ("phone\n1\n", "text/csv; charset=rot13", 415, "Unknown charset"),  # not a text one
    ],
)
async def test_files_that_cannot_be_imported_say_why(
    api: httpx.AsyncClient,
    db: AsyncEngine,
    team: Team,
    content: str | bytes,
    content_type: str,
    status: int,
    words: str,
) -> None:
    response = await upload(api, team, content, content_type=content_type)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"] + str(response.json()["error"]["details"])
    assert await rows(db, "SELECT id FROM contacts WHERE tenant_id = :t", t=team.tenant_id) == []


async def test_a_latin1_file_imports_when_it_says_so(api: httpx.AsyncClient, team: Team) -> None:
    content = "phone,name\n5511987650001,Jos\xe9\n".encode("latin-1")
    response = await upload(api, team, content, content_type="text/csv; charset=latin-1")
    assert response.status_code == 201 and response.json()["valid"] == 1


async def test_a_file_over_10_mb_is_refused(api: httpx.AsyncClient, team: Team) -> None:
    big = "phone,name\n" + ("5511987650001," + "x" * 100 + "\n") * (MAX_CSV_BYTES // 110)
    response = await upload(api, team, big)
    assert response.status_code == 413 and "10 MB" in response.text


async def test_another_tenant_s_channel_and_import_are_unknown(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team, other: Team
) -> None:
    wrong = await upload(api, team, FILE, channel_id=other.channel_id)
    assert wrong.status_code == 422 and error_fields(wrong) == ["channel_id"]
    theirs = (await upload(api, other, FILE)).json()
    assert (
        await api.get(f"{IMPORTS}/{theirs['id']}", headers=team.as_("admin"))
    ).status_code == 404
    body = {
        "name": "x",
        "channel_id": team.channel_id,
        "audience": {"csv_import_id": theirs["id"]},
        "variants": [{"body": "hi"}],
    }
    refused = await api.post(BASE, json=body, headers=team.as_("admin"))
    assert refused.status_code == 422 and error_fields(refused) == ["audience.csv_import_id"]
    agent = await api.post(
        IMPORTS,
        params={"channel_id": team.channel_id},
        content=FILE,
        headers={**team.as_("agent"), "Content-Type": "text/csv"},
    )
    assert agent.status_code == 403
