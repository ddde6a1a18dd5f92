"""Schema version 10 moves CSV imports recorded in audit_log to the imports tables, under the
same ids, so campaigns that name them keep their audience; applying it again changes nothing."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from engine.campaigns import ParsedCsv, RowError
from engine.db import apply_schema, system_tx, tenant_tx
from engine.store.campaigns import freeze_audience, get_import, insert_import
from tests.support.campaigns import create_campaign
from tests.support.harness import seed_whatsapp


def test_imports_kept_in_audit_log_move_to_their_own_tables(
    clean_db: Engine, database_url: str
) -> None:
    acme = seed_whatsapp(clean_db)
    with system_tx(clean_db) as conn:
        contact_ids = [
            int(
                conn.execute(
                    text(
                        "INSERT INTO contacts (tenant_id, name, phone) VALUES (:t, :n, :p) "
                        "RETURNING id"
                    ),
                    {"t": acme.tenant_id, "n": f"Ana {i}", "p": f"+551198765000{i}"},
                ).scalar_one()
            )
            for i in range(2)
        ]
        data = {
            "channel_id": acme.channel_id,
            "total_rows": 3,
            "valid": 2,
            "created": 2,
            "error_count": 1,
            "errors": [{"line": 3, "reason": "invalid phone number"}],
            "contact_ids": contact_ids,
        }
        old_id = int(
            conn.execute(
                text(
                    "INSERT INTO audit_log (tenant_id, action, target, data) VALUES "
                    "(:t, 'campaign.csv_import', 'channel', CAST(:d AS jsonb)) RETURNING id"
                ),
                {"t": acme.tenant_id, "d": json.dumps(data)},
            ).scalar_one()
        )

    apply_schema(database_url)
    apply_schema(database_url)  # idempotent: nothing moves twice

    with tenant_tx(clean_db, acme.tenant_id) as conn:
        moved = get_import(conn, tenant_id=acme.tenant_id, import_id=old_id)
        assert moved is not None
        assert (moved.total_rows, moved.valid, moved.error_count, moved.status) == (
            3,
            2,
            1,
            "completed_with_errors",
        )
        assert moved.errors == [RowError(line=3, reason="invalid phone number")]
        newer = insert_import(
            conn,
            tenant_id=acme.tenant_id,
            channel_id=acme.channel_id,
            channel_type="whatsapp",
            parsed=ParsedCsv(rows=(), errors=()),
            user_id=None,
        )
    assert newer.id > old_id
    with system_tx(clean_db) as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM campaign_imports), "
                "(SELECT count(*) FROM campaign_import_errors), "
                "(SELECT count(*) FROM campaign_import_contacts)"
            )
        ).one()
    assert tuple(counts) == (2, 1, 2)

    # A campaign that named the old import still reaches its contacts.
    campaign_id = create_campaign(
        clean_db, tenant_id=acme.tenant_id, channel_id=acme.channel_id, contact_ids=[1]
    )
    with tenant_tx(clean_db, acme.tenant_id) as conn:
        conn.execute(
            text("UPDATE campaigns SET audience = CAST(:a AS jsonb) WHERE id = :id"),
            {"a": json.dumps({"csv_import_id": old_id}), "id": campaign_id},
        )
        assert freeze_audience(conn, campaign_id, tenant_id=acme.tenant_id) == 2
