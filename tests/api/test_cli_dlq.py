"""The `flowdesk` command line, run in-process against the real database, Redis and a worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import psycopg
import pytest
import redis
from sqlalchemy import Engine, text

from engine import security
from engine.db import SCHEMA_VERSION, create_db_engine, system_tx
from engine.secrets_box import open_secrets
from engine.store.dead_letters import NewDeadLetter, insert_dead_letter
from engine.store.tenants import insert_tenant
from tests.conftest import count
from tests.support.cli import Ran, invoke, logging_restored
from tests.support.cli import cli_env as set_cli_env
from tests.support.harness import fixture_bytes, running_engine, seed_whatsapp

REPO = Path(__file__).resolve().parents[2]
BACKEND_URL = "https://desk.example.com"
WHATSAPP_CONFIG = {
    "phone_number_id": "106540352242999",
    "access_token": "EAAG-token",
    "app_secret": "app-secret-0123",
    "verify_token": "verify-token-0123",
}
META_SECRETS = {k: v for k, v in WHATSAPP_CONFIG.items() if k != "phone_number_id"}
TELEGRAM_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw8"
TWILIO_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
SENDGRID_SECRET = "sg-parse-5Kq9xW2mZr7LtBv"
# One valid --config per channel type, with the external id each must be stored under.
VALID_CONFIGS: dict[str, tuple[dict[str, object], str]] = {
    "whatsapp": (WHATSAPP_CONFIG, "106540352242999"),
    "messenger": ({**META_SECRETS, "page_id": "112233445566"}, "112233445566"),
    "instagram": ({**META_SECRETS, "ig_account_id": "17841400000000"}, "17841400000000"),
    "telegram": (
        {"bot_token": TELEGRAM_TOKEN, "webhook_secret": "tg-secret_0123"},
        "7012345678",
    ),
    "sms": (
        {
            "phone_number": "+14155550100",
            "account_sid": "AC" + "0" * 32,
            "auth_token": TWILIO_AUTH_TOKEN,
        },
        "+14155550100",
    ),
    "email": (
        {
            "address": "Support@Help.Acme.test",
            "inbound_provider": "sendgrid",
            "webhook_secret": SENDGRID_SECRET,
        },
        "support@help.acme.test",
    ),
}
# One bad field per channel type: (the config, the field the error must name, a secret that
# must not appear in the error).
BAD_CONFIGS: dict[str, tuple[dict[str, object], str, str]] = {
    "whatsapp": ({**WHATSAPP_CONFIG, "phone_number_id": "not-digits"}, "phone_number_id", ""),
    "messenger": ({**META_SECRETS, "page_id": "abc", "app_secret": "short"}, "page_id", "short"),
    "instagram": (META_SECRETS, "ig_account_id", "EAAG-token"),
    "telegram": (
        {"bot_token": "7012345678:too-short-secret", "webhook_secret": "ok"},
        "bot_token",
        "too-short-secret",
    ),
    "sms": (
        {**VALID_CONFIGS["sms"][0], "auth_token": "NOT-HEX-but-secret-0123456789abcd"},
        "auth_token",
        "NOT-HEX-but-secret",
    ),
    "email": (
        {"address": "not an address", "inbound_provider": "mailgun", "signing_key": "k" * 12},
        "address",
        "k" * 12,
    ),
}


@pytest.fixture
def engine_db(database_url: str) -> Iterator[Engine]:
    """The session database, emptied (tests/api's own `db` fixture is an async engine)."""
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'schema_migrations'"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    engine = create_db_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    engine_db: Engine,
    database_url: str,
    redis_url: str,
    queue_prefix: str,
) -> Iterator[None]:
    set_cli_env(
        monkeypatch,
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        BACKEND_URL=BACKEND_URL,
    )
    monkeypatch.setattr(security, "BCRYPT_ROUNDS", 4)
    with logging_restored():
        yield


@pytest.fixture
def cli(cli_env: None, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str, as_json: bool = True) -> Ran:
        return invoke(capsys, ["--json", *argv] if as_json else argv)

    return run


def _create_tenant(cli: Any, email: str, *, name: str = "Acme", as_json: bool = True) -> Ran:
    argv = f"tenant create --name {name} --admin-email {email} --admin-password".split()
    return cli(*argv, "correct horse", as_json=as_json)


def _tenant(cli: Any, email: str = "admin@acme.test") -> int:
    ran = _create_tenant(cli, email)
    assert ran.code == 0, ran.err
    return int(ran.json()["tenant_id"])


def _create_channel(
    cli: Any, tenant: int, config: str, *, type: str = "whatsapp", as_json: bool = True
) -> Ran:
    argv = f"channel create --tenant {tenant} --type {type} --name Sales --config".split()
    return cli(*argv, config, as_json=as_json)


def _one_line_error(ran: Ran) -> str:
    assert ran.code == 2
    assert ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("flowdesk: error: ")
    return lines[0]


# set-up commands ------------------------------------------------------------------------


def test_db_init_is_idempotent(cli: Any) -> None:
    first, second = cli("db", "init"), cli("db", "init")
    assert (first.code, second.code) == (0, 0)
    assert first.json() == second.json() == {"schema_version": SCHEMA_VERSION}


def test_tenant_then_whatsapp_channel_prints_its_webhook_url(cli: Any, engine_db: Engine) -> None:
    tenant_id = _tenant(cli)
    ran = _create_channel(cli, tenant_id, json.dumps(WHATSAPP_CONFIG))
    assert ran.code == 0, ran.err
    channel_id = ran.json()["channel_id"]
    assert ran.json()["webhook_url"] == f"{BACKEND_URL}/webhooks/whatsapp/{channel_id}"
    with system_tx(engine_db) as conn:
        stored = conn.execute(
            text("SELECT secrets::text FROM channels WHERE id = :id"), {"id": channel_id}
        ).scalar_one()
    assert open_secrets(stored).app_secret == WHATSAPP_CONFIG["app_secret"]
    assert WHATSAPP_CONFIG["app_secret"] not in stored  # encrypted at rest
    assert (
        count(
            engine_db,
            "SELECT count(*) FROM channels "
            "WHERE id = :id AND tenant_id = :t AND external_id = :ext",
            id=channel_id,
            t=tenant_id,
            ext=WHATSAPP_CONFIG["phone_number_id"],
        )
        == 1
    )
    human = _create_tenant(cli, "b@beta.test", name="Beta", as_json=False)
    assert human.code == 0 and "created" in human.out


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ('{"phone_number_id": ', "--config: not JSON"),
        (
            json.dumps({k: v for k, v in WHATSAPP_CONFIG.items() if k != "access_token"}),
            "access_token",
        ),
        (json.dumps({**WHATSAPP_CONFIG, "phone_number_id": "not-digits"}), "phone_number_id"),
        (json.dumps({**WHATSAPP_CONFIG, "surprise": 1}), "surprise"),
    ],
)
def test_bad_channel_config_is_refused_with_one_line_naming_it(
    cli: Any, engine_db: Engine, config: str, names: str
) -> None:
    tenant_id = _tenant(cli)
    ran = _create_channel(cli, tenant_id, config, as_json=False)
    line = _one_line_error(ran)
    assert "--config" in line and names in line
    assert "EAAG-token" not in line  # a secret is never echoed back
    assert count(engine_db, "SELECT count(*) FROM channels") == 0


def test_channel_for_an_unknown_tenant_is_refused(cli: Any, engine_db: Engine) -> None:
    ran = _create_channel(cli, 424242, json.dumps(WHATSAPP_CONFIG), as_json=False)
    assert "--tenant: no tenant 424242" in _one_line_error(ran)
    assert count(engine_db, "SELECT count(*) FROM channels") == 0


@pytest.mark.parametrize("channel_type", sorted(VALID_CONFIGS))
def test_every_channel_type_is_created_from_its_own_setup(
    cli: Any, engine_db: Engine, channel_type: str
) -> None:
    config, external_id = VALID_CONFIGS[channel_type]
    tenant_id = _tenant(cli)
    ran = _create_channel(cli, tenant_id, json.dumps(config), type=channel_type)
    assert ran.code == 0, ran.err
    created = ran.json()
    channel_id = created["channel_id"]
    assert created["webhook_url"] == f"{BACKEND_URL}/webhooks/{channel_type}/{channel_id}"
    with system_tx(engine_db) as conn:
        row = conn.execute(
            text("SELECT tenant_id, type, external_id, secrets::text FROM channels WHERE id = :id"),
            {"id": channel_id},
        ).one()
    assert (row[0], row[1], row[2]) == (tenant_id, channel_type, external_id)
    secrets = open_secrets(row[3]).model_dump(exclude_none=True)
    assert secrets and all(secrets.values())  # the credentials went to the secrets column
    if channel_type == "telegram":
        assert "setWebhook" in created["hint"] and created["webhook_url"] in created["hint"]
        assert TELEGRAM_TOKEN not in created["hint"]
    elif channel_type == "email":
        assert "basic auth" in created["hint"] and "<webhook_secret>@" in created["hint"]
        assert SENDGRID_SECRET not in created["hint"]
    else:
        assert created["hint"] is None


def test_a_human_gets_the_url_and_the_next_step(cli: Any) -> None:
    tenant_id = _tenant(cli)
    config = json.dumps(VALID_CONFIGS["telegram"][0])
    ran = _create_channel(cli, tenant_id, config, type="telegram", as_json=False)
    assert ran.code == 0, ran.err
    lines = ran.out.strip().splitlines()
    assert lines[0].startswith("channel ") and lines[0].endswith(" created")
    assert lines[1].startswith(f"webhook URL: {BACKEND_URL}/webhooks/telegram/")
    assert "setWebhook" in lines[2] and TELEGRAM_TOKEN not in ran.out


@pytest.mark.parametrize("channel_type", sorted(BAD_CONFIGS))
def test_a_bad_field_of_each_channel_type_is_named_and_nothing_is_stored(
    cli: Any, engine_db: Engine, channel_type: str
) -> None:
    config, field, secret = BAD_CONFIGS[channel_type]
    tenant_id = _tenant(cli)
    ran = _create_channel(cli, tenant_id, json.dumps(config), type=channel_type, as_json=False)
    line = _one_line_error(ran)
    assert line.startswith("flowdesk: error: --config: ")
    assert f"{field}:" in line
    if secret:
        assert secret not in line
    assert count(engine_db, "SELECT count(*) FROM channels") == 0


def test_every_bad_field_is_listed_on_the_one_line(cli: Any) -> None:
    tenant_id = _tenant(cli)
    config = {"phone_number": "5550100", "account_sid": "nope", "extra": 1}
    ran = _create_channel(cli, tenant_id, json.dumps(config), type="sms", as_json=False)
    line = _one_line_error(ran)
    for field in ("phone_number", "account_sid", "auth_token", "extra"):
        assert f"{field}:" in line


def test_a_config_that_is_not_an_object_is_refused(cli: Any) -> None:
    tenant_id = _tenant(cli)
    line = _one_line_error(_create_channel(cli, tenant_id, "[1, 2]", as_json=False))
    assert "--config: must be a JSON object" in line


def test_the_same_account_twice_is_refused(cli: Any, engine_db: Engine) -> None:
    tenant_id = _tenant(cli)
    config, _ = VALID_CONFIGS["sms"]
    assert _create_channel(cli, tenant_id, json.dumps(config), type="sms").code == 0
    again = cli(
        *f"channel create --tenant {tenant_id} --type sms --name Other --config".split(),
        json.dumps(config),
        as_json=False,
    )
    assert "already connected" in _one_line_error(again)
    named = _create_channel(cli, tenant_id, json.dumps(WHATSAPP_CONFIG), as_json=False)
    assert "--name: the tenant already has a channel named 'Sales'" in _one_line_error(named)
    assert count(engine_db, "SELECT count(*) FROM channels") == 1


def test_duplicate_admin_email_is_refused_and_creates_no_tenant(
    cli: Any, engine_db: Engine
) -> None:
    _tenant(cli, "ops@acme.test")
    ran = _create_tenant(cli, "OPS@acme.test", name="Acme2", as_json=False)
    assert "--admin-email" in _one_line_error(ran) and "already a user" in ran.err
    assert count(engine_db, "SELECT count(*) FROM tenants") == 1


def test_json_errors_are_one_json_document_on_stderr(cli: Any) -> None:
    ran = _create_channel(cli, 1, "[]", type="sms")
    assert ran.code == 2
    assert json.loads(ran.err) == {
        "error": "--config: must be a JSON object of the channel's settings"
    }


# sandbox ----------------------------------------------------------------------------------


def test_sandbox_command_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URI")}
    env["FLOWDESK_DATA_DIR"] = str(tmp_path)  # nothing may touch the repository's data dir
    argv = [sys.executable, "-m", "api.cli", "--json", "sandbox", "--port", "0"]
    proc = subprocess.Popen(
        [*argv, "--smtp-port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())  # one line once both servers listen
        assert ready["http_url"].startswith("http://127.0.0.1:")
        assert ready["api_base_url"]["whatsapp"] == ready["http_url"] + "/v21.0"
        assert ready["smtp_port"] > 0
        health = httpx.get(ready["http_url"] + "/_sandbox/health", timeout=5)
        assert (health.status_code, health.json()) == (200, {"ok": True})
        with socket.create_connection(("127.0.0.1", ready["smtp_port"]), timeout=5) as smtp:
            assert smtp.recv(64).startswith(b"220")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sandbox_on_a_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ran = subprocess.run(
            [sys.executable, "-m", "api.cli", "sandbox", "--port", port, "--smtp-port", "0"],
            cwd=REPO,
            env={**os.environ, "FLOWDESK_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines()[-1].startswith("flowdesk: error: sandbox:")


# dead letters -----------------------------------------------------------------------------


def _dead_letter(
    db: Engine,
    *,
    actor: str = "process_inbox",
    error_class: str = "PermanentError",
    tenant_id: int | None = None,
    age_s: int = 0,
    payload: dict[str, object] | None = None,
    requeued: bool = False,
) -> int:
    message = payload or {
        "queue_name": "inbound",
        "actor_name": actor,
        "args": [[1]],
        "kwargs": {},
        "options": {},
    }
    with system_tx(db) as conn:
        dl_id = insert_dead_letter(
            conn,
            NewDeadLetter(
                tenant_id=tenant_id,
                actor=actor,
                queue=str(message["queue_name"]),
                message_id="m-1",
                payload_json=json.dumps(message),
                error_class=error_class,
                error_message=f"{error_class} in {actor}",
                traceback=f'Traceback (most recent call last):\n  File "x.py"\n{error_class}: boom',
                attempts=3,
            ),
        )
        conn.execute(
            text(
                "UPDATE dead_letters SET created_at = now() - make_interval(secs => :age), "
                "requeued_at = CASE WHEN :rq THEN now() END WHERE id = :id"
            ),
            {"age": age_s, "rq": requeued, "id": dl_id},
        )
    return dl_id


def _ids(ran: Ran) -> list[int]:
    assert ran.code == 0, ran.err
    return [int(d["id"]) for d in ran.json()]


def test_dlq_list_filters(cli: Any, engine_db: Engine) -> None:
    with system_tx(engine_db) as conn:
        acme, beta = insert_tenant(conn, name="Acme"), insert_tenant(conn, name="Beta")
    old = _dead_letter(engine_db, age_s=7200, tenant_id=acme)
    fresh = _dead_letter(engine_db, error_class="InvalidPayloadError", tenant_id=beta)
    other = _dead_letter(engine_db, actor="publish_outbox", error_class="RateLimitedError")
    _dead_letter(engine_db, requeued=True)

    assert _ids(cli("dlq", "list")) == [other, fresh, old]  # newest first, live only
    assert _ids(cli("dlq", "list", "--actor", "publish_outbox")) == [other]
    assert _ids(cli("dlq", "list", "--error-class", "InvalidPayloadError")) == [fresh]
    assert _ids(cli("dlq", "list", "--older-than", "1h")) == [old]
    assert _ids(cli("dlq", "list", "--newer-than", "30m")) == [other, fresh]
    assert _ids(cli("dlq", "list", "--tenant", str(acme))) == [old]
    assert _ids(cli("dlq", "list", "--actor", "process_inbox", "--newer-than", "1h")) == [fresh]
    assert len(_ids(cli("dlq", "list", "--include-requeued"))) == 4
    assert _ids(cli("dlq", "list", "--limit", "1")) == [other]
    human = cli("dlq", "list", "--error-class", "RateLimitedError", as_json=False)
    assert "publish_outbox" in human.out and "RateLimitedError" in human.out
    assert cli("dlq", "list", "--actor", "nobody", as_json=False).out.strip() == "no dead letters"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("dlq", "list", "--older-than", "5x"), "--older-than"),
        (("dlq", "list", "--newer-than", "-3h"), "--newer-than"),
        (("dlq", "requeue", "--id", "0"), "--id"),
        (("dlq", "list", "--older-than", "99999999999d"), "--older-than"),  # past datetime
        (("dlq", "list", "--older-than", "999999999d"), "--older-than"),  # past PostgreSQL
        (("dlq", "list", "--since", "0001-01-01T00:00:00+14:00"), "--since"),
        (("dlq", "list", "--tenant", "9" * 20), "--tenant"),  # past bigint
        (
            (
                "tenant",
                "create",
                "--name",
                "A",
                "--admin-email",
                "a@b.test",
                "--admin-password",
                "correct horse",
                "--time-zone",
                "Mars/Base",
            ),
            "--time-zone",
        ),
    ],
)
def test_bad_dlq_arguments_exit_2_naming_the_argument(
    cli: Any, argv: tuple[str, ...], names: str
) -> None:
    ran = cli(*argv, as_json=False)
    assert ran.code == 2
    assert ran.out == ""
    last = ran.err.strip().splitlines()[-1]  # argparse prints usage first, then the error
    assert "error" in last and names in last


def test_requeue_or_purge_without_saying_which_is_refused(cli: Any, engine_db: Engine) -> None:
    _dead_letter(engine_db)
    for command in ("requeue", "purge"):
        line = _one_line_error(cli("dlq", command, as_json=False))
        assert "--id, a filter, or --all" in line
    assert count(engine_db, "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL") == 1


def test_dlq_show_has_payload_and_traceback(cli: Any, engine_db: Engine) -> None:
    dl_id = _dead_letter(engine_db, error_class="ProviderRejectedError")
    shown = cli("dlq", "show", str(dl_id)).json()
    assert shown["id"] == dl_id
    assert shown["payload"]["actor_name"] == "process_inbox"
    assert shown["payload"]["args"] == [[1]]
    assert shown["traceback"].endswith("ProviderRejectedError: boom")
    assert shown["attempts"] == 3
    human = cli("dlq", "show", str(dl_id), as_json=False).out
    assert "traceback: Traceback" in human and "ProviderRejectedError" in human
    assert f"no dead letter {dl_id + 100}" in _one_line_error(
        cli("dlq", "show", str(dl_id + 100), as_json=False)
    )


def test_dlq_purge_by_error_class_removes_only_those(cli: Any, engine_db: Engine) -> None:
    doomed = [_dead_letter(engine_db, error_class="InvalidPayloadError") for _ in range(2)]
    kept = _dead_letter(engine_db, error_class="PermanentError")
    ran = cli("dlq", "purge", "--error-class", "InvalidPayloadError")
    assert ran.json() == {"purged": len(doomed)}
    assert _ids(cli("dlq", "list", "--include-requeued")) == [kept]


def _broker_messages(redis_url: str, prefix: str, queue: str) -> list[dramatiq.Message[Any]]:
    client = redis.Redis.from_url(redis_url)
    return [dramatiq.Message.decode(raw) for raw in client.hvals(f"{prefix}:{queue}.msgs")]


def test_dlq_requeue_all_and_by_filter_puts_each_live_one_on_the_broker_once(
    cli: Any, engine_db: Engine, redis_url: str, queue_prefix: str
) -> None:
    inbound = [_dead_letter(engine_db) for _ in range(2)]
    outbound = _dead_letter(
        engine_db,
        actor="publish_outbox",
        payload={
            "queue_name": "deliver",
            "actor_name": "publish_outbox",
            "args": [[5, 6]],
            "kwargs": {},
            "options": {},
        },
    )
    _dead_letter(engine_db, requeued=True)

    assert cli("dlq", "requeue", "--actor", "publish_outbox").json() == {"requeued": [outbound]}
    [sent] = _broker_messages(redis_url, queue_prefix, "deliver")
    assert (sent.actor_name, sent.args) == ("publish_outbox", ([5, 6],))
    assert sent.options["requeued_from"] == outbound

    assert cli("dlq", "requeue", "--all").json() == {"requeued": inbound}
    queued = _broker_messages(redis_url, queue_prefix, "inbound")
    assert sorted(m.options["requeued_from"] for m in queued) == inbound
    assert {m.actor_name for m in queued} == {"process_inbox"}
    assert cli("dlq", "requeue", "--all").json() == {"requeued": []}  # nothing live is left
    assert len(_broker_messages(redis_url, queue_prefix, "inbound")) == 2
    assert _ids(cli("dlq", "list")) == []
    rows = cli("dlq", "list", "--include-requeued").json()
    assert all(r["requeued_at"] is not None for r in rows)
    assert sorted(r["requeue_count"] for r in rows) == [0, 1, 1, 1]


def test_dlq_requeue_brings_a_dead_inbox_row_back_to_life(
    cli: Any, engine_db: Engine, database_url: str, redis_url: str, queue_prefix: str
) -> None:
    seeded = seed_whatsapp(engine_db)
    with system_tx(engine_db) as conn:
        inbox_id = conn.execute(
            text(
                "INSERT INTO inbox (tenant_id, channel_id, dedupe_key, body, status, attempts, "
                "note) VALUES (:t, :c, 'k-1', :b, 'dead', 1, 'database refused the batch') "
                "RETURNING id"
            ),
            {
                "t": seeded.tenant_id,
                "c": seeded.channel_id,
                "b": fixture_bytes("whatsapp", "text.json"),
            },
        ).scalar_one()
    dl_id = _dead_letter(
        engine_db,
        tenant_id=seeded.tenant_id,
        payload={
            "queue_name": "inbound",
            "actor_name": "process_inbox",
            "args": [[inbox_id]],
            "kwargs": {},
            "options": {},
        },
    )
    with running_engine(
        database_url=database_url, redis_url=redis_url, queue_prefix=queue_prefix
    ) as running:
        assert cli("dlq", "requeue", "--id", str(dl_id)).json() == {"requeued": [dl_id]}
        running.drain()
        assert count(engine_db, "SELECT count(*) FROM inbox WHERE status = 'processed'") == 1
        assert cli("dlq", "requeue", "--id", str(dl_id)).json() == {"requeued": []}
        running.drain()

    assert count(engine_db, "SELECT count(*) FROM messages") == 1
    assert count(engine_db, "SELECT unread_count FROM tickets") == 1
    shown = cli("dlq", "show", str(dl_id)).json()
    assert shown["requeued_at"] is not None
    assert shown["requeue_count"] == 1
    assert _ids(cli("dlq", "list")) == []
