"""Inbound stages called one by one on a real database, each test in a rolled-back transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from actors.deps import default_adapters
from engine.db import set_system, set_tenant
from engine.events import (
    ChannelConfig,
    ChannelSecrets,
    ChannelType,
    DeliveryStatus,
    InboundMessage,
    MalformedEvent,
    MessageType,
    ProviderNotice,
    Reaction,
    StatusUpdate,
)
from engine.store.channels import insert_channel
from engine.store.conversations import find_or_create_ticket, upsert_contact
from engine.store.inbox import InboxRow
from engine.store.tenants import insert_tenant
from pipelines.inbound import (
    BatchOutcome,
    RoutedEvent,
    ValidatedEvent,
    ack,
    enrich,
    persist,
    route,
    validate,
)
from pipelines.inbound.models import without_nul
from tests.support.harness import FIXTURES, PHONE_NUMBER_ID, fixture_bytes

ADAPTERS = default_adapters()
ANA = "5511987654321"
ANA_OLD_FORM = "551187654321"  # the same mobile without Brazil's ninth digit
ANA_E164 = "+5511987654321"
QUOTED_ID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ3QUZFNkQ0RjZBRjM1QkE0QQA="
T0 = 1_749_416_383  # the fixtures' message timestamp

Edit = Callable[[dict[str, Any]], None]


def webhook(name: str, edit: Edit | None = None) -> bytes:
    """A fixture body, optionally edited (its first message or status is `value[...][0]`)."""
    payload = json.loads(fixture_bytes("whatsapp", name))
    if edit is not None:
        edit(payload["entry"][0]["changes"][0]["value"])
    return json.dumps(payload).encode()


def text_from(wa_id: str, message_id: str, *, at: int = T0) -> bytes:
    def edit(value: dict[str, Any]) -> None:
        value["contacts"][0]["wa_id"] = wa_id
        value["messages"][0].update({"from": wa_id, "id": message_id, "timestamp": str(at)})

    return webhook("text.json", edit)


def status(name: str, provider_id: str) -> bytes:
    return webhook(f"status_{name}.json", lambda v: v["statuses"][0].update(id=provider_id))


def reaction(emoji: str | None, *, at: int, target: str = QUOTED_ID) -> bytes:
    def edit(value: dict[str, Any]) -> None:
        message = value["messages"][0]
        message.update(id=f"wamid.reaction-{uuid.uuid4().hex}", timestamp=str(at))
        message["reaction"] = {"message_id": target, **({"emoji": emoji} if emoji else {})}

    return webhook("reaction.json", edit)


@dataclass(frozen=True)
class World:
    conn: Connection
    tenant_id: int
    channel_id: int

    def inbox_row(self, body: bytes) -> InboxRow:
        """A committed-looking inbox row for `body` (what claim_inbox would hand over)."""
        set_system(self.conn)
        inbox_id, received_at = self.conn.execute(
            text(
                "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body) "
                "VALUES (:t, :c, :k, :b) RETURNING id, received_at"
            ),
            {"t": self.tenant_id, "c": self.channel_id, "k": uuid.uuid4().hex, "b": body},
        ).one()
        return InboxRow(
            id=inbox_id,
            tenant_id=self.tenant_id,
            channel_id=self.channel_id,
            channel_type=ChannelType.WHATSAPP,
            address_id=PHONE_NUMBER_ID,
            body=body,
            received_at=received_at,
            attempts=0,
        )

    def validated(self, *bodies: bytes) -> list[ValidatedEvent]:
        rows = [self.inbox_row(b) for b in bodies]
        set_tenant(self.conn, self.tenant_id)
        return validate(rows, adapters=ADAPTERS)

    def routed(self, *bodies: bytes) -> list[RoutedEvent]:
        return route(enrich(self.validated(*bodies), conn=self.conn), conn=self.conn)

    def persisted(self, *bodies: bytes) -> BatchOutcome:
        return persist(self.routed(*bodies), conn=self.conn)

    def scalar(self, sql: str, **params: object) -> Any:
        return self.conn.execute(text(sql), params).scalar_one()

    def outbound(self, provider_id: str, *, status: str = "sent") -> int:
        """An outbound message we sent to Ana earlier, as the outbound pipeline stores it."""
        contact = upsert_contact(
            self.conn,
            tenant_id=self.tenant_id,
            channel_type="whatsapp",
            identity_key=ANA_E164,
            external_id=ANA,
            name="Ana Lima",
            phone=ANA_E164,
        )
        ticket = find_or_create_ticket(
            self.conn, tenant_id=self.tenant_id, channel_id=self.channel_id, contact_id=contact.id
        )
        return int(
            self.scalar(
                "INSERT INTO messages (tenant_id, ticket_id, contact_id, channel_id, direction, "
                "type, body, provider_message_id, status, send_type) VALUES (:t, :tk, :c, :ch, "
                "'out', 'text', 'Seu pedido saiu', :p, :s, 'chat') RETURNING id",
                t=self.tenant_id,
                tk=ticket.id,
                c=contact.id,
                ch=self.channel_id,
                p=provider_id,
                s=status,
            )
        )


@pytest.fixture
def world(db: Engine) -> Iterator[World]:
    with db.connect() as conn:
        tx = conn.begin()
        try:
            set_system(conn)
            tenant_id = insert_tenant(conn, name="Acme")
            channel_id = insert_channel(
                conn,
                tenant_id=tenant_id,
                type=ChannelType.WHATSAPP,
                name="WhatsApp",
                external_id=str(uuid.uuid4().int)[:15],
                config=ChannelConfig(),
                secrets=ChannelSecrets(app_secret="secret-0123"),
            )
            yield World(conn, tenant_id, channel_id)
        finally:
            tx.rollback()


# validate ------------------------------------------------------------------------------


def _row(body: bytes, *, channel_type: ChannelType = ChannelType.WHATSAPP) -> InboxRow:
    return InboxRow(
        id=7,
        tenant_id=1,
        channel_id=2,
        channel_type=channel_type,
        address_id=PHONE_NUMBER_ID,
        body=body,
        received_at=datetime.now(UTC),
        attempts=0,
    )


def _kinds(events: Sequence[ValidatedEvent]) -> list[str]:
    return [v.event.kind for v in events]


def test_validate_turns_a_text_webhook_into_one_message_event() -> None:
    [v] = validate([_row(fixture_bytes("whatsapp", "text.json"))], adapters=ADAPTERS)
    assert (v.inbox_id, v.tenant_id, v.channel_id, v.position) == (7, 1, 2, 0)
    event = v.event
    assert isinstance(event, InboundMessage)
    assert event.type is MessageType.TEXT
    assert event.body == "Olá! Meu pedido #4521 ainda não chegou."
    assert event.sender.external_id == ANA
    assert event.sender.name == "Ana Lima"
    assert event.provider_timestamp == datetime.fromtimestamp(T0, UTC)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("status_read.json", ["status"]),
        ("reaction.json", ["reaction"]),
        ("reaction_removed.json", ["reaction"]),
        ("errors.json", ["notice", "notice"]),
        ("malformed_message.json", ["message", "malformed"]),
        # Only the parts addressed to this channel's number, in document order.
        ("batch.json", ["message", "message", "status"]),
    ],
)
def test_validate_produces_the_expected_events_per_fixture(
    fixture: str, expected: list[str]
) -> None:
    events = validate([_row(fixture_bytes("whatsapp", fixture))], adapters=ADAPTERS)
    assert _kinds(events) == expected
    assert [v.position for v in events] == list(range(len(expected)))


@pytest.mark.parametrize(
    "fixture", sorted(p.name for p in (FIXTURES / "whatsapp").glob("*.json")), ids=str
)
def test_removing_nul_leaves_every_event_shape_as_it_was(fixture: str) -> None:
    for v in validate([_row(fixture_bytes("whatsapp", fixture))], adapters=ADAPTERS):
        assert without_nul(v.event) == v.event


def test_nul_anywhere_in_a_message_is_dropped_and_the_message_stored(world: World) -> None:
    def edit(value: dict[str, Any]) -> None:
        image = value["messages"][0]["image"]
        image["caption"] = "look\u0000 here"
        image["id"] = "media\u0000-1"

    body = webhook("image.json", edit)
    assert b"\\u0000" in body  # a JSON escape, as a provider would send it
    outcome = world.persisted(body)

    assert outcome.messages_stored == 1
    stored = world.conn.execute(text("SELECT body, media FROM messages")).one()
    assert stored.body == "look here"
    assert (stored.media[0]["caption"], stored.media[0]["provider_media_id"]) == (
        "look here",
        "media-1",
    )


def test_validate_keeps_malformed_parts_with_their_reason_instead_of_raising() -> None:
    events = validate(
        [_row(b"{not json"), _row(fixture_bytes("whatsapp", "malformed_message.json"))],
        adapters=ADAPTERS,
    )
    reasons = [v.event.reason for v in events if isinstance(v.event, MalformedEvent)]
    assert reasons[0] == "body is not JSON"
    assert "from" in reasons[1]
    removed = validate(
        [_row(fixture_bytes("whatsapp", "reaction_removed.json"))], adapters=ADAPTERS
    )
    assert isinstance(removed[0].event, Reaction) and removed[0].event.emoji is None


def test_validate_without_an_adapter_for_the_channel_is_a_malformed_event() -> None:
    only_whatsapp = {ChannelType.WHATSAPP: ADAPTERS[ChannelType.WHATSAPP]}
    [v] = validate([_row(b"{}", channel_type=ChannelType.TELEGRAM)], adapters=only_whatsapp)
    assert isinstance(v.event, MalformedEvent)
    assert "no adapter" in v.event.reason


def test_validate_reads_statuses_and_notices() -> None:
    [failed] = validate([_row(fixture_bytes("whatsapp", "status_failed.json"))], adapters=ADAPTERS)
    assert isinstance(failed.event, StatusUpdate)
    assert failed.event.status is DeliveryStatus.FAILED
    assert (failed.event.error_code, failed.event.error_title) == (131026, "Message undeliverable")
    notices = validate([_row(fixture_bytes("whatsapp", "errors.json"))], adapters=ADAPTERS)
    assert [n.event.code for n in notices if isinstance(n.event, ProviderNotice)] == [
        131000,
        130472,
    ]


# enrich --------------------------------------------------------------------------------


def test_enrich_makes_both_brazil_forms_of_a_number_one_contact_and_reuses_it(
    world: World,
) -> None:
    first = enrich(
        world.validated(text_from(ANA, "wamid.E1"), text_from(ANA_OLD_FORM, "wamid.E2")),
        conn=world.conn,
    )
    assert len({e.contact_id for e in first}) == 1
    assert [e.contact_created for e in first] == [True, False]
    later = enrich(world.validated(text_from(ANA_OLD_FORM, "wamid.E3")), conn=world.conn)
    assert later[0].contact_id == first[0].contact_id
    assert later[0].contact_created is False
    assert world.scalar("SELECT count(*) FROM contacts") == 1
    assert world.scalar("SELECT phone FROM contacts") == ANA_E164
    assert world.scalar("SELECT count(*) FROM contact_identities") == 1


def test_enrich_leaves_statuses_without_a_contact(world: World) -> None:
    [e] = enrich(world.validated(status("read", "wamid.X")), conn=world.conn)
    assert e.contact_id is None
    assert world.scalar("SELECT count(*) FROM contacts") == 0


# route ---------------------------------------------------------------------------------


def test_route_creates_a_ticket_once_and_returns_the_same_live_ticket_after(
    world: World,
) -> None:
    [first] = world.routed(text_from(ANA, "wamid.R1"))
    [second] = world.routed(text_from(ANA, "wamid.R2"))
    assert first.ticket is not None and second.ticket is not None
    assert first.ticket.created and not second.ticket.created
    assert second.ticket.id == first.ticket.id
    assert world.scalar("SELECT count(*) FROM tickets") == 1
    assert world.scalar("SELECT status FROM tickets") == "pending"


def test_a_message_after_the_ticket_was_closed_opens_a_new_pending_ticket(
    world: World,
) -> None:
    [first] = world.routed(text_from(ANA, "wamid.C1"))
    assert first.ticket is not None
    world.conn.execute(
        text("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = :id"),
        {"id": first.ticket.id},
    )
    [after] = world.routed(text_from(ANA, "wamid.C2"))
    assert after.ticket is not None
    assert after.ticket.created and after.ticket.id != first.ticket.id
    assert after.ticket.protocol != first.ticket.protocol
    assert world.scalar("SELECT status FROM tickets WHERE id = :id", id=after.ticket.id) == (
        "pending"
    )
    assert world.scalar("SELECT count(*) FROM tickets WHERE status = 'closed'") == 1


def test_route_gives_reactions_and_statuses_no_ticket(world: World) -> None:
    routed = world.routed(reaction("👍", at=T0), status("sent", "wamid.X"))
    assert [r.ticket for r in routed] == [None, None]
    assert world.scalar("SELECT count(*) FROM tickets") == 0


# persist -------------------------------------------------------------------------------


def test_persist_counts_duplicates_and_bumps_unread_once_per_message(world: World) -> None:
    body = text_from(ANA, "wamid.P1")
    first = world.persisted(body, body)  # the same message twice in one batch
    assert (first.messages_stored, first.duplicates, first.tickets_created) == (1, 1, 1)
    again = world.persisted(body)  # and redelivered later
    assert (again.messages_stored, again.duplicates, again.tickets_created) == (0, 1, 0)
    assert again.outbox_ids == []
    assert world.scalar("SELECT count(*) FROM messages") == 1
    assert world.scalar("SELECT unread_count FROM tickets") == 1
    assert world.scalar("SELECT count(*) FROM ticket_events WHERE type = 'message_received'") == 1
    topics = world.conn.execute(text("SELECT topic FROM outbox ORDER BY id")).scalars().all()
    assert topics == ["ticket.created", "message.created"]
    world.persisted(text_from(ANA, "wamid.P2", at=T0 + 60))
    assert world.scalar("SELECT unread_count FROM tickets") == 2
    assert world.scalar("SELECT last_message_at FROM tickets") == datetime.fromtimestamp(
        T0 + 60, UTC
    )


def test_a_batch_from_several_people_counts_each_ticket_and_keeps_each_ones_order(
    world: World,
) -> None:
    bruno = "5521998765432"
    outcome = world.persisted(
        text_from(ANA, "wamid.B1"),
        text_from(bruno, "wamid.B2", at=T0 + 5),
        text_from(ANA, "wamid.B3", at=T0 + 9),
    )
    assert (outcome.messages_stored, outcome.tickets_created) == (3, 2)
    unread = world.conn.execute(
        text(
            "SELECT c.phone, t.unread_count, t.last_inbound_at FROM tickets t "
            "JOIN contacts c ON c.id = t.contact_id ORDER BY c.phone"
        )
    ).all()
    assert [(r[0], r[1], r[2]) for r in unread] == [
        ("+" + ANA, 2, datetime.fromtimestamp(T0 + 9, UTC)),
        ("+" + bruno, 1, datetime.fromtimestamp(T0 + 5, UTC)),
    ]
    announced = world.conn.execute(
        text(
            "SELECT m.provider_message_id FROM outbox o "
            "JOIN messages m ON m.id = CAST(o.payload->>'message_id' AS bigint) "
            "WHERE o.topic = 'message.created' ORDER BY o.id"
        )
    ).scalars()
    order = list(announced)
    assert sorted(order) == ["wamid.B1", "wamid.B2", "wamid.B3"]
    assert order.index("wamid.B1") < order.index("wamid.B3")  # Ana's, in the order she wrote


def test_a_reaction_and_a_reply_find_a_message_of_the_same_batch(world: World) -> None:
    def reply_to(target: str) -> bytes:
        def edit(value: dict[str, Any]) -> None:
            value["messages"][0]["context"]["id"] = target

        return webhook("reply_with_context.json", edit)

    # The provider delivered the reaction first; all three share one batch.
    world.persisted(
        reaction("👍", at=T0 + 30, target="wamid.S1"),
        text_from(ANA, "wamid.S1"),
        reply_to("wamid.S1"),
    )
    assert _reactions(world) == ["👍"]
    quoted = world.conn.execute(
        text(
            "SELECT q.provider_message_id FROM messages m JOIN messages q "
            "ON q.id = m.quoted_message_id"
        )
    ).scalars()
    assert list(quoted) == ["wamid.S1"]


def test_a_late_message_never_moves_the_ticket_clock_back(world: World) -> None:
    world.persisted(text_from(ANA, "wamid.L2", at=T0 + 600))
    world.persisted(text_from(ANA, "wamid.L1", at=T0))
    assert world.scalar("SELECT last_inbound_at FROM tickets") == datetime.fromtimestamp(
        T0 + 600, UTC
    )


def _delivery(world: World, provider_id: str) -> tuple[str, int | None, str | None]:
    row = world.conn.execute(
        text(
            "SELECT status, error_code, error_message FROM messages WHERE provider_message_id = :p"
        ),
        {"p": provider_id},
    ).one()
    return row[0], row[1], row[2]


def test_delivery_status_only_moves_forward(world: World) -> None:
    world.outbound("wamid.OUT1")
    assert world.persisted(status("read", "wamid.OUT1")).statuses_applied == 1
    late = world.persisted(status("delivered", "wamid.OUT1"))  # older, arriving after read
    assert late.statuses_applied == 0 and late.outbox_ids == []
    assert _delivery(world, "wamid.OUT1") == ("read", None, None)
    world.persisted(status("failed", "wamid.OUT1"))  # a failure cannot undo a read
    assert _delivery(world, "wamid.OUT1")[0] == "read"
    # Every event is still on record, linked to the message.
    assert (
        world.scalar(
            "SELECT count(*) FROM message_status_events "
            "WHERE provider_message_id = 'wamid.OUT1' AND message_id IS NOT NULL"
        )
        == 3
    )


def test_failed_status_keeps_the_providers_error(world: World) -> None:
    world.outbound("wamid.OUT2")
    outcome = world.persisted(status("failed", "wamid.OUT2"))
    assert outcome.statuses_applied == 1
    assert _delivery(world, "wamid.OUT2") == ("failed", "131026", "Message undeliverable")
    topics = world.conn.execute(text("SELECT topic FROM outbox")).scalars().all()
    assert topics == ["message.status"]


def test_status_for_an_unknown_message_is_kept_for_later(world: World) -> None:
    outcome = world.persisted(status("delivered", "wamid.NOT-YET-STORED"))
    assert outcome.statuses_applied == 0
    row = world.conn.execute(
        text(
            "SELECT message_id, status FROM message_status_events "
            "WHERE provider_message_id = 'wamid.NOT-YET-STORED'"
        )
    ).one()
    assert tuple(row) == (None, "delivered")
    world.persisted(status("delivered", "wamid.NOT-YET-STORED"))  # redelivery changes nothing
    assert world.scalar("SELECT count(*) FROM message_status_events") == 1


def _reactions(world: World) -> list[str]:
    return list(world.conn.execute(text("SELECT emoji FROM message_reactions")).scalars())


def test_reactions_set_replace_and_remove_and_an_older_one_changes_nothing(
    world: World,
) -> None:
    world.outbound(QUOTED_ID)
    assert len(world.persisted(reaction("👍", at=T0)).outbox_ids) == 1
    assert _reactions(world) == ["👍"]
    world.persisted(reaction("❤️", at=T0 + 20))
    assert _reactions(world) == ["❤️"]
    stale = world.persisted(reaction("😮", at=T0 + 10))  # sent before ❤️, delivered after
    assert stale.outbox_ids == []
    assert _reactions(world) == ["❤️"]
    stale_removal = world.persisted(reaction(None, at=T0 + 15))
    assert stale_removal.outbox_ids == []
    assert _reactions(world) == ["❤️"]
    world.persisted(reaction(None, at=T0 + 30))
    assert _reactions(world) == []


def test_reaction_to_an_unknown_message_is_ignored(world: World) -> None:
    outcome = world.persisted(reaction("👍", at=T0, target="wamid.never-seen"))
    assert outcome.outbox_ids == []
    assert _reactions(world) == []


def test_a_reply_links_to_the_message_it_quotes(world: World) -> None:
    quoted = world.outbound(QUOTED_ID)
    world.persisted(webhook("reply_with_context.json"))
    row = world.conn.execute(
        text(
            "SELECT quoted_message_id, quoted_provider_message_id FROM messages "
            "WHERE direction = 'in'"
        )
    ).one()
    assert tuple(row) == (quoted, QUOTED_ID)


def test_a_reply_to_a_message_we_never_stored_keeps_the_provider_reference(
    world: World,
) -> None:
    world.persisted(webhook("reply_with_context.json"))
    row = world.conn.execute(
        text("SELECT quoted_message_id, quoted_provider_message_id FROM messages")
    ).one()
    assert tuple(row) == (None, QUOTED_ID)


# ack -----------------------------------------------------------------------------------


def _without_sender(value: dict[str, Any]) -> None:
    for message in value["messages"]:
        message.pop("from", None)


def test_ack_marks_each_row_by_outcome_and_dead_letters_each_malformed_event(
    world: World,
) -> None:
    bodies = {
        "processed": fixture_bytes("whatsapp", "text.json"),
        "partial": fixture_bytes("whatsapp", "malformed_message.json"),
        "dead": webhook("malformed_message.json", _without_sender),  # two bad messages
        "ignored": fixture_bytes("whatsapp", "errors.json"),
        "not json": b"{not json",
    }
    rows = {name: world.inbox_row(body) for name, body in bodies.items()}
    events = validate(list(rows.values()), adapters=ADAPTERS)
    outcome = BatchOutcome()
    set_system(world.conn)
    ack(list(rows.values()), events, conn=world.conn, outcome=outcome)

    def inbox(name: str) -> tuple[str, int, str | None]:
        got = world.conn.execute(
            text(
                "SELECT status, attempts, note FROM inbox "
                "WHERE id = :id AND processed_at IS NOT NULL"
            ),
            {"id": rows[name].id},
        ).one()
        return got[0], got[1], got[2]

    def dead_letters(name: str) -> int:
        return int(
            world.scalar(
                "SELECT count(*) FROM dead_letters WHERE payload -> 'args' -> 0 ->> 0 = :id",
                id=str(rows[name].id),
            )
        )

    assert inbox("processed") == ("processed", 1, None)
    assert inbox("partial")[0] == "partial" and "malformed" in str(inbox("partial")[2])
    assert inbox("dead")[0] == "dead"
    assert inbox("not json")[0] == "dead"
    assert inbox("ignored")[0] == "ignored" and "131000" in str(inbox("ignored")[2])
    counts = {name: dead_letters(name) for name in rows}
    assert counts == {"processed": 0, "partial": 1, "dead": 2, "ignored": 0, "not json": 1}
    assert outcome.rejected == 4

    dl = world.conn.execute(
        text(
            "SELECT tenant_id, actor, queue, error_class, error_message, payload "
            "FROM dead_letters WHERE payload -> 'args' -> 0 ->> 0 = :id"
        ),
        {"id": str(rows["partial"].id)},
    ).one()
    assert dl.tenant_id == world.tenant_id
    assert (dl.actor, dl.queue, dl.error_class) == (
        "inbound.validate",
        "inbound",
        "InvalidPayloadError",
    )
    assert "from" in dl.error_message
    # Requeueing it re-parses that inbox row.
    assert dl.payload["actor_name"] == "process_inbox"
    assert dl.payload["args"] == [[rows["partial"].id]]
    assert dl.payload["kwargs"] == {"reparse": True}
    assert "mensagem sem remetente" in dl.payload["detail"]["fragment"]


def test_a_redelivered_message_after_its_ticket_closed_opens_no_empty_ticket(
    world: World,
) -> None:
    body = text_from(ANA, "wamid.RD1")
    world.persisted(body)
    world.conn.execute(text("UPDATE tickets SET status = 'closed'"))
    again = world.persisted(body)  # Meta redelivers it, in another envelope, days later
    assert (again.messages_stored, again.duplicates, again.tickets_created) == (0, 1, 0)
    assert again.outbox_ids == []
    assert world.scalar("SELECT count(*) FROM tickets") == 1
    assert world.scalar("SELECT count(*) FROM ticket_events WHERE type = 'created'") == 1
