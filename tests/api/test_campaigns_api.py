"""The campaign API as an operator uses it: drafts, audiences, starting, pausing, cancelling,
live counts, reports and exports; and what another tenant or an agent can never do."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.campaigns.models import StatusName
from engine.campaigns import CampaignStatus
from engine.db import async_tenant_tx
from engine.store.campaigns import increment_counts
from tests.api.campaigns_helpers import (
    BASE,
    Person,
    add_people,
    add_tag,
    build_campaigns_app,
    campaign_body,
    create,
    default_audience,
    execute,
    rows,
)
from tests.api.resources_helpers import Team, error_fields, make_team

pytestmark = pytest.mark.anyio


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


def soon(minutes: int = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def people_campaign(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team, **over: object
) -> tuple[dict[str, Any], dict[str, int]]:
    """A campaign to the contacts tagged `vip`: two reachable, three that must be skipped."""
    vip = await add_tag(db, team, "vip")
    ids = await add_people(
        db,
        team,
        {
            "ana": Person("Ana Lima", "+5511987650001", identity="+5511987650001", tags=(vip,)),
            "bia": Person("Bia", "+5511987650002", tags=(vip,)),  # phone only: reachable
            "caio": Person("Caio", "+5511987650003", opted_out=True, tags=(vip,)),
            "dora": Person("Dora", "+5511987650004", tags=(vip,)),  # suppressed below
            "edu": Person("Edu", None, tags=(vip,)),  # no phone, no WhatsApp identity
            "fabi": Person("Fabi", "+5511987650006"),  # not tagged
        },
    )
    await execute(
        db,
        "INSERT INTO suppression_list (tenant_id, address, reason) VALUES (:t, :a, 'asked')",
        t=team.tenant_id,
        a="+5511987650004",
    )
    variants = [{"body": "A {{name}}"}, {"body": "B {{name}}"}, {"body": "C {{name}}"}]
    created = await create(api, db, team, audience={"tag_ids": [vip]}, variants=variants, **over)
    return created, ids


# drafts ---------------------------------------------------------------------------------


async def test_a_draft_is_created_with_zero_counts_and_the_tenant_s_time_zone(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    await execute(
        db, "UPDATE tenants SET time_zone = 'America/Sao_Paulo' WHERE id = :t", t=team.tenant_id
    )
    created = await create(
        api,
        db,
        team,
        send_window={"start": "08:00", "end": "20:00", "days": ["mon", "tue", "wed"]},
        delay_ms=1500,
        variants=[
            {"body": "  Hello {{name}}  "},
            {"body": "Hi!", "media_url": "https://cdn.example/p.jpg", "media_type": "image"},
        ],
    )
    assert created["status"] == "draft"
    assert created["time_zone"] == "America/Sao_Paulo"
    assert created["counts"] == dict.fromkeys(
        ("pending", "sent", "delivered", "read", "failed", "skipped", "total"), 0
    )
    assert created["variants"][0]["body"] == "Hello {{name}}"
    assert created["send_window"]["days"] == ["mon", "tue", "wed"]
    assert created["delay_ms"] == 1500
    got = await api.get(f"{BASE}/{created['id']}", headers=team.as_("admin"))
    assert got.status_code == 200 and got.json() == created


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"variants": [{"body": "Olá {{nome}}"}]}, "variants.0.body", "unknown variable {{nome}}"),
        ({"variants": [{"body": "   "}]}, "variants.0.body", "at least 1 character"),
        ({"variants": [{"body": "a"}] * 4}, "variants", "at most 3"),
        (
            {
                "variants": [
                    {"body": "a", "template": {"name": "Order Update", "language": "pt_BR"}}
                ]
            },
            "variants.0.template.name",
            "lowercase letters",
        ),
        (
            {"variants": [{"body": "a", "template": {"name": "order", "language": "portuguese"}}]},
            "variants.0.template.language",
            "language code",
        ),
        (
            {
                "variants": [
                    {"body": "a"},
                    {
                        "body": "b",
                        "template": {"name": "o", "language": "pt_BR", "params": ["{{cpf}}"]},
                    },
                ]
            },
            "variants.1.template.params.0",
            "unknown variable {{cpf}}",
        ),
        ({"variants": []}, "variants", "at least 1"),
        ({"audience": {"tag_ids": [1], "contact_ids": [2]}}, "audience", "exactly one"),
        ({"delay_ms": 1000, "rate_per_min": 30}, "body", "not both"),
        ({"start_at": "2030-01-02T10:00:00Z", "end_at": "2030-01-01T10:00:00Z"}, "body", "after"),
        ({"start_at": "2030-01-02T10:00:00"}, "start_at", "timezone"),
        ({"end_at": "9998-12-31T23:59:59-14:00"}, "end_at", "between 1970 and 9998"),
        ({"start_at": "0001-01-01T00:00:00+14:00"}, "start_at", "range of dates"),
        ({"time_zone": "Mars/Base"}, "time_zone", "IANA"),
        ({"send_window": {"start": "09:00", "end": "09:00"}}, "send_window", "must differ"),
        ({"surprise": True}, "surprise", "Extra inputs"),
    ],
)
async def test_bad_drafts_are_refused_naming_the_field(
    api: httpx.AsyncClient,
    db: AsyncEngine,
    team: Team,
    over: dict[str, object],
    field: str,
    words: str,
) -> None:
    body = campaign_body(team, audience=await default_audience(db, team)) | over
    response = await api.post(BASE, json=body, headers=team.as_("admin"))
    assert response.status_code == 422, response.text
    assert field in error_fields(response)
    assert words in response.text


async def test_a_variant_s_whatsapp_template_is_kept_and_refused_on_other_channels(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    template = {"name": "order_update", "language": "pt_BR", "params": ["{{first_name|there}}"]}
    variants = [{"body": "Hi {{first_name|there}}", "template": template}]
    created = await create(api, db, team, variants=variants)
    assert created["variants"][0]["template"] == template

    admin = team.as_("admin")
    body = campaign_body(
        team, audience=await default_audience(db, team), variants=[{"body": "Hi"}, *variants]
    )
    on_telegram = await api.post(
        BASE, json=body | {"channel_id": team.telegram_channel_id}, headers=admin
    )
    assert on_telegram.status_code == 422, on_telegram.text
    assert error_fields(on_telegram) == ["variants.1.template"]
    assert "WhatsApp channels only" in on_telegram.text
    moved = await api.patch(
        f"{BASE}/{created['id']}", json={"channel_id": team.telegram_channel_id}, headers=admin
    )
    assert moved.status_code == 422 and error_fields(moved) == ["variants.0.template"]
    # A draft's variants change too, and a template is checked against its channel then.
    plain = await create(api, db, team)
    on_plain = f"{BASE}/{plain['id']}"
    to_telegram = await api.patch(
        on_plain, json={"channel_id": team.telegram_channel_id}, headers=admin
    )
    assert to_telegram.status_code == 200, to_telegram.text
    templated = await api.patch(on_plain, json={"variants": variants}, headers=admin)
    assert templated.status_code == 422 and error_fields(templated) == ["variants.0.template"]
    rewritten = await api.patch(
        on_plain, json={"variants": [{"body": "Hello"}, {"body": "Hi"}]}, headers=admin
    )
    assert rewritten.status_code == 200, rewritten.text
    assert [v["body"] for v in rewritten.json()["variants"]] == ["Hello", "Hi"]


async def test_another_tenant_s_channel_tags_and_contacts_are_unknown_here(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team, other: Team
) -> None:
    theirs_tag = await add_tag(db, other, "theirs")
    theirs = await add_people(db, other, {"x": Person("X", "+14155550100")})
    mine = await add_people(db, team, {"y": Person("Y", "+14155550101")})
    cases = [
        ({"channel_id": other.channel_id}, "channel_id"),
        ({"audience": {"tag_ids": [theirs_tag]}}, "audience.tag_ids.0"),
        ({"audience": {"contact_ids": [mine["y"], theirs["x"]]}}, "audience.contact_ids.1"),
        ({"audience": {"csv_import_id": 999_999_999}}, "audience.csv_import_id"),
    ]
    audience = {"contact_ids": [mine["y"]]}
    for over, field in cases:
        body = campaign_body(team, audience=audience) | over
        response = await api.post(BASE, json=body, headers=team.as_("admin"))
        assert response.status_code == 422, response.text
        assert error_fields(response) == [field]


async def test_agents_may_not_see_or_run_campaigns(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created = await create(api, db, team, role="supervisor")
    agent = team.as_("agent")
    assert (await api.get(BASE, headers=agent)).status_code == 403
    assert (await api.get(f"{BASE}/{created['id']}", headers=agent)).status_code == 403
    body = campaign_body(team, audience=created["audience"])
    assert (await api.post(BASE, json=body, headers=agent)).status_code == 403
    assert (await api.post(f"{BASE}/{created['id']}/pause", headers=agent)).status_code == 403
    assert (await api.get(BASE)).status_code == 401


async def test_another_tenant_s_campaign_is_not_found_by_any_endpoint(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team, other: Team
) -> None:
    theirs = await create(api, db, other)
    me = team.as_("admin")
    cid = theirs["id"]
    for method, path in [
        ("GET", f"{BASE}/{cid}"),
        ("PATCH", f"{BASE}/{cid}"),
        ("POST", f"{BASE}/{cid}/schedule"),
        ("POST", f"{BASE}/{cid}/start"),
        ("POST", f"{BASE}/{cid}/pause"),
        ("POST", f"{BASE}/{cid}/resume"),
        ("POST", f"{BASE}/{cid}/cancel"),
        ("POST", f"{BASE}/{cid}/duplicate"),
        ("GET", f"{BASE}/{cid}/report"),
        ("GET", f"{BASE}/{cid}/export.csv"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
        if path.endswith("/duplicate"):
            kwargs = {}
        response = await api.request(method, path, headers=me, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    listed = (await api.get(BASE, headers=me)).json()
    assert cid not in [c["id"] for c in listed["items"]]
    # and the other tenant's campaign is untouched
    assert (await api.get(f"{BASE}/{cid}", headers=other.as_("admin"))).json()["status"] == "draft"


async def test_only_a_draft_can_be_changed(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created = await create(api, db, team, rate_per_min=30)
    path, admin = f"{BASE}/{created['id']}", team.as_("admin")
    changed = await api.patch(
        path,
        json={"name": "June promo", "rate_per_min": None, "delay_ms": 2000, "end_at": None},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["rate_per_min"], body["delay_ms"]) == ("June promo", None, 2000)
    both = await api.patch(path, json={"rate_per_min": 10}, headers=admin)
    assert both.status_code == 422 and "not both" in both.text
    assert (await api.patch(path, json={"name": None}, headers=admin)).status_code == 422
    scheduled = await api.post(f"{path}/schedule", json={"start_at": soon()}, headers=admin)
    assert scheduled.status_code == 200, scheduled.text
    refused = await api.patch(path, json={"name": "Too late"}, headers=admin)
    assert refused.status_code == 409
    assert "Only a draft campaign can be changed; this one is scheduled" in refused.text


async def test_list_filters_by_status_and_pages_with_a_cursor(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    ids = [(await create(api, db, team, name=f"Promo {i}"))["id"] for i in range(5)]
    admin = team.as_("admin")
    await api.post(f"{BASE}/{ids[1]}/cancel", json={}, headers=admin)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(BASE, params=params, headers=admin)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    cancelled = (await api.get(BASE, params={"status": "cancelled"}, headers=admin)).json()
    assert [c["id"] for c in cancelled["items"]] == [ids[1]]
    found = (await api.get(BASE, params={"search": "omo 3"}, headers=admin)).json()
    assert [c["id"] for c in found["items"]] == [ids[3]]
    bad = await api.get(BASE, params={"status": "sending", "limit": 0}, headers=admin)
    assert bad.status_code == 422 and set(error_fields(bad)) == {"status", "limit"}


# schedule, start, pause, resume, cancel -------------------------------------------------


async def test_scheduling_needs_a_future_start_and_a_connected_channel(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created = await create(api, db, team)
    path, admin = f"{BASE}/{created['id']}", team.as_("admin")
    missing = await api.post(f"{path}/schedule", json={}, headers=admin)
    assert missing.status_code == 422 and error_fields(missing) == ["start_at"]
    past = await api.post(f"{path}/schedule", json={"start_at": soon(-5)}, headers=admin)
    assert past.status_code == 422 and "future" in past.text
    await execute(
        db, "UPDATE channels SET status = 'disconnected' WHERE id = :c", c=team.channel_id
    )
    down = await api.post(f"{path}/schedule", json={"start_at": soon()}, headers=admin)
    assert down.status_code == 409
    assert down.json()["error"]["message"].startswith("Channel disconnected")
    assert (await api.get(path, headers=admin)).json()["status"] == "draft"  # unchanged
    await execute(db, "UPDATE channels SET status = 'connected' WHERE id = :c", c=team.channel_id)
    start_at = soon(90)
    ok = await api.post(f"{path}/schedule", json={"start_at": start_at}, headers=admin)
    assert ok.status_code == 200
    assert ok.json()["status"] == "scheduled"
    assert datetime.fromisoformat(ok.json()["start_at"]) == datetime.fromisoformat(start_at)
    events = await rows(
        db,
        "SELECT from_status, to_status, user_id FROM campaign_events WHERE campaign_id = :c",
        c=created["id"],
    )
    assert events == [("draft", "scheduled", team.user_ids["admin"])]
    again = await api.post(f"{path}/schedule", json={"start_at": soon()}, headers=admin)
    assert again.status_code == 409 and "already scheduled" in again.text


async def test_starting_freezes_the_audience_with_skips_and_random_variants(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, ids = await people_campaign(api, db, team)
    started = await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["status"] == "running" and body["started_at"] is not None
    assert body["counts"] | {} == {
        "pending": 2,
        "sent": 0,
        "delivered": 0,
        "read": 0,
        "failed": 0,
        "skipped": 3,
        "total": 5,
    }
    frozen = await rows(
        db,
        "SELECT contact_id, status, reason, variant FROM campaign_contacts"
        " WHERE campaign_id = :c ORDER BY contact_id",
        c=created["id"],
    )
    by_contact = {r[0]: r[1:] for r in frozen}
    assert set(by_contact) == {ids[k] for k in ("ana", "bia", "caio", "dora", "edu")}
    assert by_contact[ids["caio"]] == ("skipped", "opted_out", None)
    assert by_contact[ids["dora"]] == ("skipped", "suppressed", None)
    assert by_contact[ids["edu"]] == ("skipped", "no_address", None)
    for key in ("ana", "bia"):
        status, reason, variant = by_contact[ids[key]]
        assert (status, reason) == ("pending", None) and variant in (0, 1, 2)
    # a second start is refused and adds nobody
    again = await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    assert again.status_code == 409
    progress = await rows(
        db,
        "SELECT payload ->> 'status', payload -> 'counts' ->> 'pending' FROM outbox"
        " WHERE tenant_id = :t AND topic = 'campaign.progress' ORDER BY id",
        t=team.tenant_id,
    )
    assert progress == [("running", "2")]


async def test_variants_are_drawn_at_random_per_contact(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    many = await add_people(
        db, team, {f"p{i}": Person(f"P{i}", f"+55119876{i:05d}") for i in range(60)}
    )
    created = await create(
        api,
        db,
        team,
        audience={"contact_ids": list(many.values())},
        variants=[{"body": "one"}, {"body": "two"}, {"body": "three"}],
    )
    await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    drawn = await rows(
        db,
        "SELECT variant, count(*) FROM campaign_contacts WHERE campaign_id = :c GROUP BY 1",
        c=created["id"],
    )
    assert {v for v, _ in drawn} == {0, 1, 2}  # 60 draws: each variant (p ≈ 1 - 3e-11)
    assert sum(n for _, n in drawn) == 60


async def test_start_now_refuses_a_disconnected_channel_and_leaves_the_draft(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, _ = await people_campaign(api, db, team)
    await execute(db, "UPDATE channels SET status = 'error' WHERE id = :c", c=team.channel_id)
    response = await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "channel_disconnected"
    again = (await api.get(f"{BASE}/{created['id']}", headers=team.as_("admin"))).json()
    assert again["status"] == "draft" and again["counts"]["total"] == 0


async def test_pause_resume_and_cancel_at_any_moment(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, _ = await people_campaign(api, db, team)
    path, sup = f"{BASE}/{created['id']}", team.as_("supervisor")
    assert (await api.post(f"{path}/start", json={}, headers=sup)).json()["status"] == "running"
    paused = await api.post(f"{path}/pause", json={"reason": "wrong price"}, headers=sup)
    assert paused.json()["status"] == "paused"
    start_paused = await api.post(f"{path}/start", json={}, headers=sup)
    assert start_paused.status_code == 409 and "resume it instead" in start_paused.text
    resumed = await api.post(f"{path}/resume", json={}, headers=sup)
    assert resumed.json()["status"] == "running"
    assert resumed.json()["counts"]["total"] == 5  # nobody added on resume
    cancelled = await api.post(f"{path}/cancel", json={"reason": "stop"}, headers=sup)
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    for action in ("pause", "resume", "cancel", "start"):
        refused = await api.post(f"{path}/{action}", json={}, headers=sup)
        assert refused.status_code == 409, action
        assert "cancelled" in refused.json()["error"]["message"]
    history = await rows(
        db,
        "SELECT from_status, to_status, reason FROM campaign_events"
        " WHERE campaign_id = :c ORDER BY id",
        c=created["id"],
    )
    assert history == [
        ("draft", "running", None),
        ("running", "paused", "wrong price"),
        ("paused", "running", None),
        ("running", "cancelled", "stop"),
    ]


async def test_a_campaign_paused_before_its_start_goes_back_to_scheduled(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created = await create(api, db, team)
    path, sup = f"{BASE}/{created['id']}", team.as_("supervisor")
    await api.post(f"{path}/schedule", json={"start_at": soon()}, headers=sup)
    assert (await api.post(f"{path}/pause", json={}, headers=sup)).json()["status"] == "paused"
    assert (await api.post(f"{path}/resume", json={}, headers=sup)).json()["status"] == "scheduled"
    not_paused = await api.post(f"{path}/resume", json={}, headers=sup)
    assert not_paused.status_code == 409 and "Only a paused campaign" in not_paused.text


async def test_a_campaign_past_its_end_time_cannot_start(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created = await create(api, db, team)
    await execute(
        db,
        "UPDATE campaigns SET end_at = now() - interval '1 minute' WHERE id = :c",
        c=created["id"],
    )
    response = await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    assert response.status_code == 409 and error_fields(response) == ["end_at"]


async def test_duplicate_makes_a_new_draft_with_the_same_message(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, _ = await people_campaign(api, db, team, start_at=soon(), delay_ms=700)
    await api.post(f"{BASE}/{created['id']}/start", json={}, headers=team.as_("admin"))
    copy = await api.post(f"{BASE}/{created['id']}/duplicate", headers=team.as_("admin"))
    assert copy.status_code == 201
    body = copy.json()
    assert body["id"] != created["id"] and body["status"] == "draft"
    assert body["name"] == "May promo (copy)"
    assert body["variants"] == created["variants"] and body["audience"] == created["audience"]
    assert body["delay_ms"] == 700 and body["start_at"] is None
    assert body["counts"]["total"] == 0


# progress, report, export ---------------------------------------------------------------


async def test_counts_are_live_and_the_report_groups_failures_and_skips(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, ids = await people_campaign(api, db, team)
    cid, admin = created["id"], team.as_("admin")
    await api.post(f"{BASE}/{cid}/start", json={}, headers=admin)
    # What the sending engine does: rows move on, counters follow.
    await execute(
        db,
        "UPDATE campaign_contacts SET status = 'failed', error_code = '131026'"
        " WHERE campaign_id = :c AND contact_id = :a",
        c=cid,
        a=ids["ana"],
    )
    await execute(
        db,
        "UPDATE campaign_contacts SET status = 'read', sent_at = now()"
        " WHERE campaign_id = :c AND contact_id = :b",
        c=cid,
        b=ids["bia"],
    )
    async with async_tenant_tx(db, team.tenant_id) as conn:
        await conn.run_sync(
            lambda c: increment_counts(
                c, cid, {"pending": -2, "failed": 1, "read": 1}, tenant_id=team.tenant_id
            )
        )
    live = (await api.get(f"{BASE}/{cid}", headers=admin)).json()["counts"]
    assert (live["pending"], live["failed"], live["read"], live["total"]) == (0, 1, 1, 5)
    report = await api.get(f"{BASE}/{cid}/report", headers=team.as_("supervisor"))
    assert report.status_code == 200
    r = report.json()
    assert r["counts"]["skipped"] == 3
    assert r["failures"] == [{"cause": "131026", "count": 1}]
    assert sorted((s["cause"], s["count"]) for s in r["skipped"]) == [
        ("no_address", 1),
        ("opted_out", 1),
        ("suppressed", 1),
    ]
    assert sum(v["counts"]["total"] for v in r["variants"]) == 2


async def test_export_streams_one_csv_line_per_contact(
    api: httpx.AsyncClient, db: AsyncEngine, team: Team
) -> None:
    created, ids = await people_campaign(api, db, team)
    cid = created["id"]
    await execute(db, "UPDATE contacts SET name = '=HYPERLINK(1)' WHERE id = :a", a=ids["ana"])
    await api.post(f"{BASE}/{cid}/start", json={}, headers=team.as_("admin"))
    response = await api.get(f"{BASE}/{cid}/export.csv", headers=team.as_("supervisor"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="campaign-{cid}.csv"' in response.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert len(lines) == 5
    by_id = {int(line["contact_id"]): line for line in lines}
    assert by_id[ids["ana"]]["contact_name"] == "'=HYPERLINK(1)"  # not run as a formula
    assert by_id[ids["ana"]]["phone"] == "+5511987650001"
    assert by_id[ids["ana"]]["variant"] in ("1", "2", "3")
    assert by_id[ids["caio"]]["status"] == "skipped"
    assert by_id[ids["caio"]]["reason"] == "opted_out"
    assert list(lines[0]) == [
        "contact_id",
        "contact_name",
        "phone",
        "variant",
        "status",
        "error_code",
        "reason",
        "sent_at",
    ]


def test_the_status_filter_knows_every_status() -> None:
    assert set(get_args(StatusName)) == {s.value for s in CampaignStatus}
