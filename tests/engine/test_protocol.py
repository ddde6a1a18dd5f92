"""Ticket protocols: the UTC day and a zero-padded sequence that is never cut short."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, text

from engine.db import system_tx


def test_protocols_stay_distinct_past_eight_digits(db: Engine, database_url: str) -> None:
    # The app role may only draw numbers; moving the sequence takes its owner.
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as owner:
        before = owner.execute("SELECT last_value FROM ticket_protocol_seq").fetchone()
        assert before is not None
        owner.execute("SELECT setval('ticket_protocol_seq', 99999998)")
        try:
            with system_tx(db) as conn:
                made = [
                    conn.execute(text("SELECT flowdesk_next_protocol()")).scalar_one()
                    for _ in range(3)
                ]
        finally:  # numbers in between were never handed out, so going back repeats none
            owner.execute("SELECT setval('ticket_protocol_seq', %s)", (before[0],))

    assert [p[8:] for p in made] == ["99999999", "100000000", "100000001"]
    assert all(p[:8].isdigit() and p[:4] >= "2026" for p in made)  # the UTC day, YYYYMMDD


def test_short_sequence_numbers_are_zero_padded_to_eight(db: Engine) -> None:
    with system_tx(db) as conn:
        protocol = conn.execute(text("SELECT flowdesk_next_protocol()")).scalar_one()

    assert len(protocol) >= 16 and protocol.isdigit()
