"""One drill's world: a private PostgreSQL and Redis, the engine's web, worker and scheduler as
real processes, and the faults a drill injects into them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pika
import psutil  # type: ignore[import-untyped]
import redis
from cryptography.fernet import Fernet

from bench.infra import Services
from bench.procs import Child, Processes, free_port, python_argv
from bench.targets import JWT_SECRET, _healthy
from engine.db import apply_schema
from engine.embedded import EmbeddedServices, start_embedded
from engine.secrets_box import SecretsBox, install_box

Broker = Literal["redis", "rabbitmq"]
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
START_TIMEOUT_S = 60.0
# The sweeper re-offers inbox rows and sends whose broker message was lost; a short deadline
# keeps a drill's recovery short (production waits longer before second-guessing a worker).
# Retries back off for at most 5 s, so a message that failed several times in a row does not
# keep a drill waiting for minutes.
DRILL_SETTINGS = {"INBOX_SWEEP_AFTER_S": "5", "INBOX_SWEEP_EVERY_S": "2", "MAX_BACKOFF_MS": "5000"}


@dataclass(frozen=True)
class DrillServices(Services):
    """bench.infra's Services, at the drill's own PostgreSQL (a unix-socket URL)."""

    url: str = ""

    def dsn(self, database: str | None = None) -> str:
        return self.url


class Stack:
    """Started with start(), torn down (servers, processes, broker queues) with close()."""

    def __init__(self, broker: Broker, *, label: str, amqp_url: str | None = None) -> None:
        self.broker = broker
        self.amqp_url = amqp_url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
        self.prefix = f"fddrill-{uuid.uuid4().hex[:8]}-{label}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"flowdesk-drill-{label}-"))
        self.procs = Processes(self.dir / "logs")
        self.web_port = free_port()
        self.web: Child | None = None
        self.worker: Child | None = None
        self._pg: EmbeddedServices | None = None
        self._redis: EmbeddedServices | None = None
        self.services: DrillServices | None = None
        # The drill seeds channels itself, so it and the engine's processes share one key that
        # seals channel secrets; close() gives this process its configured box back.
        self._secrets_key = Fernet.generate_key().decode()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, extra_env: dict[str, str] | None = None) -> DrillServices:
        install_box(SecretsBox([self._secrets_key]))
        self._redis = start_embedded(self.dir / "redis", need_postgres=False, need_redis=True)
        self._pg = start_embedded(self.dir / "pg", need_postgres=True, need_redis=False)
        url = self._pg.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        apply_schema(self._pg.database_url)
        self.services = DrillServices("", self._redis.redis_url, url=url)
        self._env = self._engine_env(extra_env or {})
        return self.services

    def start_engine(self) -> None:
        self.start_web()
        self.start_worker()
        self.procs.start("scheduler", python_argv("-m", "api.cli", "scheduler"), self._env)

    def close(self) -> list[str]:
        """Stop everything; returns processes that had to be killed as leftovers."""
        leftovers = self.procs.close()
        if self.broker == "rabbitmq":
            self._rabbit_queues(delete=True)
        for services in (self._pg, self._redis):
            if services is not None:
                services.stop()
        install_box(None)
        for data in ("pg", "redis", "data"):  # the logs stay, for whoever reads the table
            shutil.rmtree(self.dir / data, ignore_errors=True)
        return leftovers

    def _engine_env(self, extra: dict[str, str]) -> dict[str, str]:
        assert self.services is not None
        env = {k: v for k, v in os.environ.items() if k != "AMQP_URL"}
        env |= {
            "DATABASE_URL": self.services.url,
            "REDIS_URI": self.services.redis_url,
            "QUEUE_PREFIX": self.prefix,
            "JWT_SECRET": JWT_SECRET,
            "SECRETS_KEYS": self._secrets_key,
            "FLOWDESK_DATA_DIR": str(self.dir / "data"),
            "BACKEND_URL": f"http://127.0.0.1:{self.web_port}",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **DRILL_SETTINGS,
            **extra,
        }
        if self.broker == "rabbitmq":
            env["AMQP_URL"] = self.amqp_url
        return env

    # -- processes ------------------------------------------------------------------------

    def start_web(self) -> None:
        argv = python_argv(
            *("-m", "uvicorn", "--factory", "api.app:app_from_env"),
            *("--host", "127.0.0.1", "--port", str(self.web_port)),
            *("--log-level", "warning", "--no-access-log"),
        )
        self.web = self.procs.start("web", argv, self._env)
        self.procs.wait_for(
            "the web process to listen",
            lambda: _healthy(self.web_port),
            timeout_s=START_TIMEOUT_S,
            watch=[self.web],
        )

    def start_worker(self) -> None:
        argv = python_argv("-m", "dramatiq", "actors.worker_entry", "-p", "1", "-t", "4")
        self.worker = self.procs.start("worker", argv, self._env)

    def kill_web(self) -> None:
        """SIGKILL: requests in flight get no answer, whatever they had committed."""
        assert self.web is not None
        _kill_tree(self.web)

    def kill_worker(self) -> None:
        """SIGKILL the dramatiq supervisor and its worker processes at once: no shutdown, no
        acks, transactions cut wherever they were."""
        assert self.worker is not None
        _kill_tree(self.worker)

    # -- services -------------------------------------------------------------------------

    def stop_postgres(self) -> None:
        assert self._pg is not None
        self._pg.stop()
        self._pg = None

    def start_postgres(self) -> None:
        self._pg = start_embedded(self.dir / "pg", need_postgres=True, need_redis=False)

    def lose_broker_messages(self) -> str:
        """Every message the broker holds for this drill disappears; says how."""
        if self.broker == "redis":
            assert self.services is not None
            redis.Redis.from_url(self.services.redis_url).flushall()
            return "FLUSHALL"
        purged = self._rabbit_queues(delete=False)
        return f"purged {purged} queues"

    def _rabbit_queues(self, *, delete: bool) -> int:
        """Purge (or delete) this drill's RabbitMQ queues, found by their prefix."""
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        names = [n for n in listed if n.startswith(self.prefix)]
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            for name in names:
                if delete:
                    channel.queue_delete(name)
                else:
                    channel.queue_purge(name)
        finally:
            connection.close()
        return len(names)


def _kill_tree(child: Child) -> None:
    try:
        root = psutil.Process(child.popen.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for proc in tree:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(tree, timeout=10)
    child.popen.wait(timeout=10)
