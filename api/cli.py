"""`flowdesk`: the command line. A composition root like the web lifespan and the worker."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config import ConfigError, Settings, load_settings
from engine.errors import EngineError
from engine.events import ChannelConfig, ChannelSecrets, ChannelType

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class CliError(Exception):
    """A problem with what the user asked for; printed as one line, exit code 2."""


class Output:
    """Prints either for people or, with --json, one JSON document for machines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: object, human: str) -> None:
        print(json.dumps(data, default=str, indent=2) if self.as_json else human)


# argument types -------------------------------------------------------------------------

_DURATION = re.compile(r"^([0-9]{1,9})([smhd])$")
MAX_DURATION = timedelta(days=36_500)  # a century: anything older predates the data
MAX_ID = 2**63 - 1  # a PostgreSQL bigint


def duration(value: str) -> timedelta:
    match = _DURATION.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 30s, 15m, 2h or 7d")
    n, unit = int(match[1]), match[2]
    span = timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})
    if span > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{value!r} is longer than {MAX_DURATION.days} days")
    return span


def positive_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_ID}")
    return int(value)


def time_zone(value: str) -> str:
    from engine.settings_registry import valid_time_zone

    try:
        return valid_time_zone(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an IANA time zone such as America/Sao_Paulo"
        ) from None


def port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 picks a free one)")
    return int(value)


# commands -------------------------------------------------------------------------------


def cmd_db_init(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from engine.db import apply_schema

    runtime = _runtime(settings)
    version = apply_schema(runtime.database_url)
    out.emit({"schema_version": version}, f"schema applied (version {version})")


def cmd_tenant_create(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from sqlalchemy.exc import IntegrityError

    from engine.db import system_tx
    from engine.security import hash_password
    from engine.store.tenants import insert_tenant, insert_user

    if "@" not in args.admin_email or len(args.admin_email) > 200:
        raise CliError("--admin-email: not an e-mail address")
    if len(args.admin_password) < 8:
        raise CliError("--admin-password: at least 8 characters")
    if not 1 <= len(args.name) <= 200:
        raise CliError("--name: 1 to 200 characters")
    password_hash = hash_password(args.admin_password)
    db = _db(settings)
    try:
        with system_tx(db) as conn:
            tenant_id = insert_tenant(conn, name=args.name, time_zone=args.time_zone)
            user_id = insert_user(
                conn,
                tenant_id=tenant_id,
                name=args.admin_name or args.admin_email.split("@")[0],
                email=args.admin_email,
                password_hash=password_hash,
                role="admin",
            )
    except IntegrityError:
        raise CliError(f"--admin-email: {args.admin_email} is already a user") from None
    out.emit(
        {"tenant_id": tenant_id, "admin_user_id": user_id},
        f"tenant {tenant_id} created; admin user {user_id} ({args.admin_email})",
    )


def cmd_channel_create(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from sqlalchemy.exc import IntegrityError

    from engine.db import system_tx
    from engine.store.channels import insert_channel
    from engine.store.tenants import tenant_exists

    if not 1 <= len(args.name) <= 100:
        raise CliError("--name: 1 to 100 characters")
    channel_type = ChannelType(args.type)
    external_id, config, secrets = _channel_setup(channel_type, args.config)
    db = _db(settings)
    try:
        with system_tx(db) as conn:
            if not tenant_exists(conn, args.tenant):
                raise CliError(f"--tenant: no tenant {args.tenant}")
            channel_id = insert_channel(
                conn,
                tenant_id=args.tenant,
                type=channel_type,
                name=args.name,
                external_id=external_id,
                config=config,
                secrets=secrets,
            )
    except IntegrityError as exc:
        raise CliError(_duplicate_channel(exc, channel_type, args.name)) from None
    url = f"{str(settings.BACKEND_URL).rstrip('/')}/webhooks/{channel_type.value}/{channel_id}"
    hint = _webhook_hint(channel_type, url, config)
    out.emit(
        {"channel_id": channel_id, "webhook_url": url, "hint": hint},
        f"channel {channel_id} created\nwebhook URL: {url}" + (f"\n{hint}" if hint else ""),
    )


# Field names whose values are credentials: never repeated in an error line.
_SECRET_FIELD = re.compile(r"token|secret|key|password|auth", re.IGNORECASE)


def _channel_setup(
    channel_type: ChannelType, raw_config: str
) -> tuple[str, ChannelConfig, ChannelSecrets]:
    """(external_id, config, secrets) from --config, validated by the channel type's own set-up
    model; CliError naming every bad field on one line otherwise."""
    from pydantic import TypeAdapter

    from adapters.registry import setup_models

    try:
        raw = json.loads(raw_config)
    except json.JSONDecodeError as exc:
        raise CliError(f"--config: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise CliError("--config: must be a JSON object of the channel's settings")
    try:
        setup = TypeAdapter(setup_models()[channel_type]).validate_python(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(config)'}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise CliError(f"--config: {_without_secrets(fields, raw)}") from None
    return setup.to_channel()


def _without_secrets(line: str, raw: dict[str, Any]) -> str:
    """`line` with every credential value of `raw` blanked out (pydantic quotes some inputs)."""
    for name, value in raw.items():
        if _SECRET_FIELD.search(str(name)) and isinstance(value, str) and len(value) >= 4:
            line = line.replace(value, "***")
    return line


def _duplicate_channel(exc: Exception, channel_type: ChannelType, name: str) -> str:
    diag = getattr(getattr(exc, "orig", None), "diag", None)
    if "name" in str(getattr(diag, "constraint_name", "") or ""):
        return f"--name: the tenant already has a channel named {name!r}"
    return f"--config: this {channel_type.value} account is already connected as a channel"


def _webhook_hint(channel_type: ChannelType, url: str, config: ChannelConfig) -> str | None:
    """What the admin must still do at the provider; secrets named, never printed."""
    from urllib.parse import urlsplit

    if channel_type is ChannelType.TELEGRAM:
        return (
            f"next: call {config.api_base_url}/bot<bot_token>/setWebhook with url={url} "
            "and secret_token=<your webhook_secret>"
        )
    if channel_type is ChannelType.EMAIL and config.inbound_provider == "sendgrid":
        parts = urlsplit(url)
        authed = parts._replace(netloc=f"inbound:<webhook_secret>@{parts.netloc}").geturl()
        return (
            "next: SendGrid Inbound Parse must call the URL with basic auth "
            f"user:webhook_secret (any user name), e.g. {authed}"
        )
    return None


def cmd_serve(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    import uvicorn

    _require_schema(settings)
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port or settings.PORT,
        log_level=settings.LOG_LEVEL.lower(),
        access_log=False,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    _require_schema(settings)
    processes = str(args.processes or settings.WORKER_PROCESSES)
    threads = str(args.threads or settings.WORKER_THREADS)
    argv = [sys.executable, "-m", "dramatiq", "actors.worker_entry", "-p", processes, "-t", threads]
    os.execvp(argv[0], argv)  # noqa: S606 - replaces this process with the dramatiq supervisor


def cmd_scheduler(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from actors.scheduler import Scheduler
    from actors.wiring import build_worker_deps

    _require_schema(settings)
    deps = build_worker_deps(settings, _runtime(settings))
    scheduler = Scheduler(deps)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
    signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
    scheduler.run()


def cmd_run(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    from engine.db import apply_schema

    procfile_path = Path(args.procfile)
    if not procfile_path.is_file():
        raise CliError(f"--procfile: no file {procfile_path}")
    procfile = parse_procfile(procfile_path.read_text())
    runtime = _runtime(settings)  # start embedded services once; children find them
    apply_schema(runtime.database_url)  # idempotent: `run` is the one-command start
    manager = Manager()
    env = dict(os.environ)
    for name, process in procfile.processes.items():
        manager.add_process(name, process, env=env)
    try:
        manager.loop()
    finally:
        runtime.close()
    if manager.returncode:
        raise SystemExit(manager.returncode)


def cmd_sandbox(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from adapters.sandbox import Sandbox, run_sandbox

    def ready(sandbox: Sandbox) -> None:
        http = sandbox.http_url
        # What each channel's api_base_url (and an e-mail channel's smtp_host/port) should be.
        bases = {
            "whatsapp": f"{http}/v21.0",
            "messenger": f"{http}/v21.0",
            "instagram": f"{http}/instagram/v21.0",
            "telegram": http,
            "sms": http,
        }
        data = {
            "http_url": http,
            "control_url": f"{http}/_sandbox/",
            "smtp_host": sandbox.host,
            "smtp_port": sandbox.smtp_port,
            "api_base_url": bases,
        }
        if out.as_json:  # one line, so a script can read the first line and go on
            print(json.dumps(data), flush=True)
            return
        lines = [
            "sandbox ready (Ctrl-C or SIGTERM stops it)",
            f"HTTP  {http}  (control API {http}/_sandbox/)",
            f"SMTP  {sandbox.host}:{sandbox.smtp_port}",
            "api_base_url per channel type:",
            *(f"  {name:<10} {base}" for name, base in bases.items()),
        ]
        print("\n".join(lines), flush=True)

    try:
        run_sandbox(args.port, args.smtp_port, host=args.host, on_ready=ready)
    except (RuntimeError, OSError) as exc:
        raise CliError(
            f"sandbox: {exc} (is --port {args.port} or --smtp-port {args.smtp_port} taken?)"
        ) from None


def cmd_demo(args: argparse.Namespace, settings: Settings, out: Output) -> None:
    from api.demo import run_demo

    run_demo(settings, out_json=out.as_json, contacts=args.contacts)


# plumbing -------------------------------------------------------------------------------


def _runtime(settings: Settings) -> Any:
    from engine.runtime import resolve_runtime

    return resolve_runtime(settings)


def _db(settings: Settings) -> Any:
    from engine.db import create_db_engine

    db = create_db_engine(_runtime(settings).database_url, pool_size=2)
    _check_schema(db)
    return db


def _require_schema(settings: Settings) -> None:
    """Refuse to start a process against a database nobody initialised."""
    from engine.db import create_db_engine

    db = create_db_engine(_runtime(settings).database_url, pool_size=1)
    try:
        _check_schema(db)
    finally:
        db.dispose()


def _check_schema(db: Any) -> None:
    from engine.db import SCHEMA_VERSION, schema_version

    version = schema_version(db)
    if version is None:
        raise CliError("the database has no schema yet: run `flowdesk db init` first")
    if version < SCHEMA_VERSION:
        raise CliError(
            f"schema version {version} is older than {SCHEMA_VERSION}: run `flowdesk db init`"
        )


def _broker(settings: Settings) -> Any:
    from actors.broker import bind_actors, build_broker
    from actors.middleware import RetryPolicy
    from actors.wiring import build_worker_deps  # noqa: F401 - declares every actor

    runtime = _runtime(settings)

    def refuse(_: object) -> None:
        raise RuntimeError("the command line does not process messages")

    broker = build_broker(
        redis_url=runtime.redis_url,
        amqp_url=settings.AMQP_URL,
        namespace=settings.QUEUE_PREFIX,
        policy=RetryPolicy(),
        recorder=refuse,
    )
    bind_actors(broker, queue_prefix=settings.QUEUE_PREFIX if settings.AMQP_URL else None)
    return broker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowdesk", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[..., None], help: str, into: Any = sub) -> Any:
        p = into.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        p.set_defaults(fn=fn)
        return p

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    add("init", cmd_db_init, "apply schema.sql (idempotent)", db)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="t", required=True)
    p = add("create", cmd_tenant_create, "create a tenant and its admin user", tenant)
    p.add_argument("--name", required=True)
    p.add_argument("--admin-email", required=True)
    p.add_argument("--admin-password", required=True)
    p.add_argument("--admin-name")
    p.add_argument("--time-zone", type=time_zone, default="UTC")

    channel = sub.add_parser("channel", help="channels").add_subparsers(dest="c", required=True)
    p = add("create", cmd_channel_create, "connect a provider channel", channel)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--type", required=True, choices=[t.value for t in ChannelType])
    p.add_argument("--name", required=True)
    p.add_argument("--config", required=True, help="JSON object of the channel's settings")

    p = add("serve", cmd_serve, "run the web process")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server listens for providers
    p.add_argument("--port", type=positive_int)
    p = add("worker", cmd_worker, "run pipeline workers")
    p.add_argument("--processes", type=positive_int)
    p.add_argument("--threads", type=positive_int)
    add("scheduler", cmd_scheduler, "run the scheduler (one leader)")
    p = add("run", cmd_run, "run web, worker and scheduler from the Procfile")
    p.add_argument("--procfile", default="Procfile")
    p = add("sandbox", cmd_sandbox, "run the provider sandbox (Graph, Telegram, Twilio, SMTP)")
    p.add_argument("--port", type=port, default=8090, help="HTTP port (0: any free one)")
    p.add_argument("--smtp-port", type=port, default=2525, help="SMTP port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1")
    p = add("demo", cmd_demo, "drive signed sample traffic through a running engine")
    p.add_argument("--contacts", type=positive_int, default=6)

    from api.cli_ops import add_ops_commands

    add_ops_commands(sub, add)

    from api.cli_campaigns import add_campaign_commands

    add_campaign_commands(sub, add)

    from api.cli_stats import add_stats_command

    add_stats_command(sub, add)

    from api.cli_protect import add_protect_commands

    add_protect_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(bool(getattr(args, "json", False)))
    try:
        settings = load_settings()
        from engine.logs import configure_logging

        configure_logging(
            settings.LOG_LEVEL if args.command in ("serve", "scheduler", "run") else "WARNING",
            settings.LOG_FORMAT,
        )
        if args.command in ("serve", "worker", "scheduler", "run"):
            _prepare_metrics(settings, fresh=args.command == "run")
        args.fn(args, settings, out)
    except (CliError, ConfigError) as exc:
        _fail(out, str(exc), EXIT_BAD_INPUT)
    except EngineError as exc:
        _fail(out, f"{type(exc).__name__}: {exc}", EXIT_FAILED)


def _prepare_metrics(settings: Settings, *, fresh: bool) -> None:
    """Metrics files for this process and the ones it starts (`run` empties its directory)."""
    from engine.metrics import prepare_multiprocess

    configured = settings.PROMETHEUS_MULTIPROC_DIR
    if configured is None and fresh:
        configured = Path(settings.FLOWDESK_DATA_DIR) / "metrics"
    prepare_multiprocess(configured, fresh=fresh)


def _fail(out: Output, message: str, code: int) -> None:
    if out.as_json:
        print(json.dumps({"error": message}), file=sys.stderr)
    else:
        print(f"flowdesk: error: {message}", file=sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
