"""`flowdesk campaign …` run in-process against the real database and Redis, as an operator
would: import a list, create, start, watch, pause, resume, cancel, report."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, text

from api.cli_campaigns import control
from engine import security
from engine.db import create_db_engine, system_tx, tenant_tx
from engine.store.campaigns import increment_counts
from engine.store.tenants import insert_tenant
from tests.support.cli import Ran, cli_env, invoke, logging_restored

LIST = (
    "phone,name\n"
    "+55 11 98765-1001,Ana Lima\n"
    "not a number,Bad One\n"
    "+55 11 98765-1002,Bia\n"
    ",Nobody\n"
    "5511987651001,Ana Twice\n"
)


@pytest.fixture
def engine_db(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    engine_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
) -> Iterator[Any]:
    cli_env(monkeypatch, database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix)
    monkeypatch.setattr(security, "BCRYPT_ROUNDS", 4)

    def run(*argv: str, as_json: bool = True) -> Ran:
        return invoke(capsys, ["--json", *argv] if as_json else argv)

    with logging_restored():
        yield run


@dataclass(frozen=True)
class Shop:
    tenant_id: int
    channel_id: int


@pytest.fixture
def shop(engine_db: Engine) -> Shop:
    with system_tx(engine_db) as conn:
        tenant_id = insert_tenant(conn, name="Shop", time_zone="America/Sao_Paulo")
        channel_id = conn.execute(
            text(
                "INSERT INTO channels (tenant_id, type, name, external_id)"
                " VALUES (:t, 'whatsapp', 'Sales', :x) RETURNING id"
            ),
            {"t": tenant_id, "x": uuid.uuid4().hex},
        ).scalar_one()
    return Shop(tenant_id, int(channel_id))


def _csv(tmp_path: Path, content: str = LIST) -> str:
    path = tmp_path / "list.csv"
    path.write_text(content, encoding="utf-8")
    return str(path)


def _campaign(cli: Any, shop: Shop, tmp_path: Path, *extra: str) -> int:
    imported = cli("campaign", "import", "--channel", str(shop.channel_id), _csv(tmp_path))
    assert imported.code == 0, imported.err
    ran = cli(
        *f"campaign create --tenant {shop.tenant_id} --channel {shop.channel_id}".split(),
        *("--name", "May promo", "--import", str(imported.json()["id"])),
        *("--message", "Hi {{first_name}}!", "--message", "Hello {{name}}"),
        *extra,
    )
    assert ran.code == 0, ran.err
    return int(ran.json()["campaign_id"])


def _one_line_error(ran: Ran) -> str:
    """The error a failed command printed: one line, or with --json one {"error": …}."""
    assert ran.code == 2, ran
    assert ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    if lines[0].startswith("{"):
        return str(json.loads(lines[0])["error"])
    assert lines[0].startswith("flowdesk: error: "), ran.err
    return lines[0]


def test_import_prints_bad_rows_with_their_line_numbers(
    cli: Any, shop: Shop, tmp_path: Path
) -> None:
    ran = cli(
        "campaign", "import", "--channel", str(shop.channel_id), _csv(tmp_path), as_json=False
    )
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert "2 of 5 rows kept (2 new contacts), 3 bad" in lines[0]
    assert lines[1:4] == [
        "  line 3: invalid phone number",
        "  line 5: missing phone",
        "  line 6: duplicate phone (same number as line 2)",
    ]
    as_json = cli("campaign", "import", "--channel", str(shop.channel_id), _csv(tmp_path))
    assert as_json.json()["valid"] == 2 and as_json.json()["created"] == 0  # known numbers now


def test_import_refuses_an_unreadable_file_in_one_line(
    cli: Any, shop: Shop, tmp_path: Path
) -> None:
    missing = cli("campaign", "import", "--channel", str(shop.channel_id), str(tmp_path / "x.csv"))
    assert "x.csv" in _one_line_error(missing)
    no_header = cli(
        "campaign", "import", "--channel", str(shop.channel_id), _csv(tmp_path, "5511987651001\n")
    )
    assert "header" in _one_line_error(no_header)
    nobody = cli("campaign", "import", "--channel", "999999999", _csv(tmp_path))
    assert "--channel: no channel 999999999" in _one_line_error(nobody)


def test_create_refuses_a_bad_message_naming_the_option(
    cli: Any, shop: Shop, tmp_path: Path
) -> None:
    base = f"campaign create --tenant {shop.tenant_id} --channel {shop.channel_id} --name X"
    ran = cli(*base.split(), "--tag", "1", "--message", "ok", "--message", "Olá {{nome}}")
    line = _one_line_error(ran)
    assert "--message 2: unknown variable {{nome}}" in line
    window = cli(*base.split(), "--contact", "1", "--message", "hi", "--window", "8h-20h")
    assert "--window/--days" in _one_line_error(window)
    nobody = cli(*base.split(), "--message", "hi")
    assert "--tag, --contact or --import" in _one_line_error(nobody)
    unknown = cli(*base.split(), "--tag", "999999999", "--message", "hi")
    assert "--tag/--contact/--import" in _one_line_error(unknown)


def test_start_pause_resume_cancel_and_list(
    cli: Any, shop: Shop, tmp_path: Path, redis_url: str, queue_prefix: str
) -> None:
    cid = _campaign(cli, shop, tmp_path, "--window", "08:00-20:00", "--delay", "2s")
    started = cli("campaign", "start", str(cid))
    assert started.json() == {"campaign_id": cid, "status": "running", "previous": "draft"}
    status = cli("campaign", "status", str(cid)).json()
    assert status["counts"]["pending"] == 2 and status["counts"]["total"] == 2
    human = cli("campaign", "pause", str(cid), "--reason", "price typo", as_json=False)
    assert human.out.strip() == f"campaign {cid}: running → paused"
    assert cli("campaign", "resume", str(cid)).json()["status"] == "running"
    assert cli("campaign", "cancel", str(cid)).json()["status"] == "cancelled"
    again = cli("campaign", "cancel", str(cid), as_json=False)
    assert "The campaign is already cancelled." in _one_line_error(again)
    resume = cli("campaign", "resume", str(cid), as_json=False)
    assert "Only a paused campaign can be resumed; this one is cancelled" in _one_line_error(resume)
    listed = cli("campaign", "list", "--tenant", str(shop.tenant_id), "--status", "cancelled")
    assert [c["id"] for c in listed.json()] == [cid]
    # every change was announced for the realtime feed and webhooks
    client = redis.Redis.from_url(redis_url)
    sent = [dramatiq.Message.decode(m) for m in client.hvals(f"{queue_prefix}:deliver.msgs")]
    assert len(sent) == 4 and {m.actor_name for m in sent} == {"publish_outbox"}


def test_status_watch_redraws_until_the_campaign_is_over(
    cli: Any, shop: Shop, tmp_path: Path, engine_db: Engine
) -> None:
    cid = _campaign(cli, shop, tmp_path)
    assert cli("campaign", "start", str(cid)).code == 0

    def sender() -> None:  # what the sending engine would do, in a few steps
        try:
            for step in ("sent", "delivered"):
                time.sleep(0.15)
                with tenant_tx(engine_db, shop.tenant_id) as conn:
                    increment_counts(conn, cid, {"pending": -1, step: 1}, tenant_id=shop.tenant_id)
            time.sleep(0.15)
        finally:  # the watch must end even if a step above failed
            with system_tx(engine_db) as conn:
                conn.execute(
                    text("UPDATE campaigns SET status = 'finished' WHERE id = :id"), {"id": cid}
                )

    thread = threading.Thread(target=sender)
    thread.start()
    ran = cli("campaign", "status", str(cid), "--watch", "--interval", "0.05", as_json=False)
    thread.join()
    assert ran.code == 0, ran.err
    lines = ran.out.strip().splitlines()
    assert len(lines) >= 3
    assert "running" in lines[0] and "[" + "-" * 30 + "]" in lines[0]  # nothing done yet
    assert "finished" in lines[-1]
    assert "100%" in lines[-1] and "sent 1 · delivered 1" in lines[-1]


def test_ctrl_c_stops_watching_without_a_traceback(
    cli: Any, shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _campaign(cli, shop, tmp_path)

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(control.time, "sleep", interrupted)
    ran = cli("campaign", "status", str(cid), "--watch", as_json=False)
    assert ran.code == 0
    assert "draft" in ran.out and "stopped watching" in ran.out
    assert ran.err == ""


def test_report_prints_counts_and_writes_the_contacts(
    cli: Any, shop: Shop, tmp_path: Path, engine_db: Engine
) -> None:
    cid = _campaign(cli, shop, tmp_path)
    cli("campaign", "start", str(cid))
    with system_tx(engine_db) as conn:
        conn.execute(
            text(
                "UPDATE campaign_contacts SET status = 'failed', error_code = '131049' "
                "WHERE id = (SELECT min(id) FROM campaign_contacts WHERE campaign_id = :c)"
            ),
            {"c": cid},
        )
    out = tmp_path / "out.csv"
    ran = cli("campaign", "report", str(cid), "--csv", str(out), as_json=False)
    assert ran.code == 0, ran.err
    assert "failed  131049: 1" in ran.out
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("contact_id,contact_name,phone,variant,status")
    assert len(lines) == 3 and any(",failed,131049," in line for line in lines)
    assert "no campaign 999999999" in _one_line_error(cli("campaign", "report", "999999999"))
