"""WhatsApp templates in campaigns: contacts inside the 24-hour window get the variant's text,
the others its template with their own parameters; what the send stage then lets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.campaigns import Variant
from engine.db import system_tx
from engine.errors import ProviderRejectedError
from engine.store.send_batch import claim_sends
from pipelines.campaigns.start import start_due_campaigns
from pipelines.outbound.send import route
from tests.support.campaigns import (
    PAST,
    create_campaign,
    db_now,
    recipient_rows,
    seed_audience,
    sql,
    tick,
)
from tests.support.harness import Seeded, seed_whatsapp

TEMPLATE = {
    "name": "order_update",
    "language": "pt_BR",
    "params": ["{{first_name|cliente}}", "{{protocol}}"],
}


@pytest.fixture
def acme(clean_db: Engine) -> Seeded:
    return seed_whatsapp(clean_db)


def audience(db: Engine, acme: Seeded) -> dict[str, int]:
    """Four contacts: wrote a minute ago, 23h50 ago, two days ago, and never (phone only)."""
    recent, late, old = seed_audience(
        db, tenant_id=acme.tenant_id, channel_id=acme.channel_id, count=3
    )
    sql(
        db,
        "UPDATE tickets SET last_inbound_at = now() - interval '23 hours 50 minutes' "
        "WHERE contact_id = :c",
        c=late,
    )
    sql(
        db,
        "UPDATE tickets SET last_inbound_at = now() - interval '2 days' WHERE contact_id = :c",
        c=old,
    )
    with system_tx(db) as conn:
        never = conn.execute(
            text(
                "INSERT INTO contacts (tenant_id, name, phone) "
                "VALUES (:t, NULL, '+5511977776666') RETURNING id"
            ),
            {"t": acme.tenant_id},
        ).scalar_one()
    return {"recent": recent, "late": late, "old": old, "never": int(never)}


def run_campaign(db: Engine, acme: Seeded, contact_ids: list[int], variant: Variant) -> int:
    campaign_id = create_campaign(
        db,
        tenant_id=acme.tenant_id,
        channel_id=acme.channel_id,
        contact_ids=contact_ids,
        start_at=PAST,
        variants=[variant],
    )
    assert start_due_campaigns(db).started == [campaign_id]
    now = db_now(db)
    for step in range(1, 6):
        tick(db, campaign_id, now + timedelta(seconds=step))
    return campaign_id


def messages_by_contact(db: Engine, campaign_id: int) -> dict[int, dict[str, Any]]:
    with system_tx(db) as conn:
        rows = conn.execute(
            text(
                "SELECT cc.contact_id, m.id, m.type, m.body, m.template, t.protocol "
                "FROM campaign_contacts cc JOIN messages m ON m.id = cc.message_id "
                "JOIN tickets t ON t.id = m.ticket_id WHERE cc.campaign_id = :c"
            ),
            {"c": campaign_id},
        ).mappings()
        return {int(r["contact_id"]): dict(r) for r in rows}


def test_outside_the_window_the_variant_template_goes_with_each_contacts_values(
    clean_db: Engine, acme: Seeded
) -> None:
    people = audience(clean_db, acme)
    variant = Variant.model_validate({"body": "Olá {{first_name}}!", "template": TEMPLATE})
    campaign_id = run_campaign(clean_db, acme, list(people.values()), variant)

    sent = messages_by_contact(clean_db, campaign_id)
    assert set(sent) == set(people.values())
    recent = sent[people["recent"]]
    assert (recent["type"], recent["body"], recent["template"]) == ("text", "Olá Cliente!", None)
    for who, first_name in (("late", "Cliente"), ("old", "Cliente"), ("never", "cliente")):
        message = sent[people[who]]
        assert (message["type"], message["body"]) == ("template", None), who
        assert message["template"] == {
            "name": "order_update",
            "language": "pt_BR",
            "parameters": [first_name, message["protocol"]],
        }, who

    # The send stage lets every one of them through: text inside the window, templates outside.
    with system_tx(clean_db) as conn:
        jobs = claim_sends(conn, [m["id"] for m in sent.values()])
    assert len(jobs) == 4
    for job in jobs:
        assert route(job, now=datetime.now(UTC))


def test_without_a_template_contacts_outside_the_window_still_fail_outside_window(
    clean_db: Engine, acme: Seeded
) -> None:
    people = audience(clean_db, acme)
    campaign_id = run_campaign(
        clean_db, acme, [people["recent"], people["old"]], Variant(body="Olá {{first_name}}!")
    )
    sent = messages_by_contact(clean_db, campaign_id)
    assert {m["type"] for m in sent.values()} == {"text"}
    with system_tx(clean_db) as conn:
        jobs = {job.contact_id: job for job in claim_sends(conn, [sent[people["old"]]["id"]])}
    with pytest.raises(ProviderRejectedError) as refused:
        route(jobs[people["old"]], now=datetime.now(UTC))
    assert refused.value.code == "outside_window"


def test_a_template_parameter_the_contact_has_no_value_for_skips_them(
    clean_db: Engine, acme: Seeded
) -> None:
    people = audience(clean_db, acme)
    template = {**TEMPLATE, "params": ["{{email}}"]}  # nobody has an e-mail, and no fallback
    variant = Variant.model_validate({"body": "Olá!", "template": template})
    campaign_id = run_campaign(clean_db, acme, [people["recent"], people["old"]], variant)
    rows = {r["contact_id"]: r for r in recipient_rows(clean_db, campaign_id)}
    assert rows[people["recent"]]["status"] == "claimed"  # inside the window: the text goes
    assert (rows[people["old"]]["status"], rows[people["old"]]["reason"]) == (
        "skipped",
        "empty_message",
    )
