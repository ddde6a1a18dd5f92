"""Embedded PostgreSQL and Redis: start, share through services.json, stop, restart with data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from config.settings import Settings
from engine import embedded
from engine.db import apply_schema
from engine.embedded import (
    EmbeddedServiceError,
    EmbeddedServices,
    read_running,
    resolve_services,
    start_embedded,
)

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "flowdesk-data"
    yield path
    record = embedded._read_record(path)  # a failed test must not leave servers behind
    if record is not None:
        for role in ("postgres", "redis"):
            pid = record.pids.get(role)
            if pid is not None and not gone(pid) and role in psutil.Process(pid).name():
                os.kill(pid, signal.SIGKILL)


def dsn(services: EmbeddedServices) -> str:
    return services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_stop_restart_keeps_data(data_dir: Path) -> None:
    with start_embedded(data_dir, need_postgres=True, need_redis=True) as services:
        assert services.database_url.startswith("postgresql+psycopg://postgres@/flowdesk?host=/")
        assert services.redis_url.startswith("redis://127.0.0.1:")
        assert apply_schema(services.database_url) >= 1
        with psycopg.connect(dsn(services)) as conn:
            assert conn.execute("SELECT to_regclass('tickets') IS NOT NULL").fetchone() == (True,)
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('survives a restart')")
        client = redis.Redis.from_url(services.redis_url)
        assert client.ping()
        client.set("queued", "work")
        assert client.get("queued") == b"work"
        client.close()

        running = read_running(data_dir)
        assert running is not None
        assert running.database_url == services.database_url
        assert running.redis_url == services.redis_url
        pids = dict(running.pids)

    assert gone(pids["postgres"])
    assert gone(pids["redis"])
    assert read_running(data_dir) is None
    assert not (data_dir / "services.json").exists()
    services.stop()  # idempotent

    with start_embedded(data_dir, need_postgres=True, need_redis=True) as again:
        with psycopg.connect(dsn(again)) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("survives a restart",)]
        client = redis.Redis.from_url(again.redis_url)
        assert client.get("queued") == b"work"
        client.close()


def test_start_after_the_owner_was_killed(data_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from engine.embedded import start_embedded
        start_embedded(Path({str(data_dir)!r}), need_postgres=True, need_redis=True)
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready"
    orphans = read_running(data_dir)
    assert orphans is not None
    owner.kill()
    owner.wait()
    assert read_running(data_dir) is None  # its owner is dead: the record no longer counts

    with start_embedded(data_dir, need_postgres=True, need_redis=True) as services:
        with psycopg.connect(dsn(services)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(services.redis_url).ping()
        assert gone(orphans.pids["redis"])  # two servers must never share one AOF
    assert gone(orphans.pids["postgres"])


def test_stale_postmaster_pid_with_reused_pid(data_dir: Path) -> None:
    start_embedded(data_dir, need_postgres=True, need_redis=False).stop()
    pidfile = data_dir / "pg" / "postmaster.pid"
    assert not pidfile.exists()
    # As if the server had been SIGKILLed and its pid then handed to this pytest process.
    pidfile.write_text(f"{os.getpid()}\n{data_dir / 'pg'}\n0\n5432\n{data_dir / 'pg'}\n\n\nready\n")

    with start_embedded(data_dir, need_postgres=True, need_redis=False) as services:
        with psycopg.connect(dsn(services)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("flowdesk",)
        with pytest.raises(EmbeddedServiceError, match="not running"):
            _ = services.redis_url


def test_resolve_services_starts_once_then_reuses(data_dir: Path) -> None:
    settings = Settings.model_construct(FLOWDESK_DATA_DIR=data_dir)
    database_url, redis_url, started = resolve_services(settings)
    assert started is not None
    try:
        assert (database_url, redis_url) == (started.database_url, started.redis_url)
        assert resolve_services(settings) == (database_url, redis_url, None)
    finally:
        started.stop()


def test_resolve_services_prefers_configuration(data_dir: Path) -> None:
    settings = Settings.model_construct(
        FLOWDESK_DATA_DIR=data_dir,
        DATABASE_URL="postgresql://app@db.example/flowdesk",
        REDIS_URI="redis://cache.example:6379/0",
    )
    assert resolve_services(settings) == (
        "postgresql+psycopg://app@db.example/flowdesk",
        "redis://cache.example:6379/0",
        None,
    )
    assert not data_dir.exists()


def test_redis_failing_to_start_is_a_clear_error(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR (broken on purpose)'\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(embedded, "_redis_binary", lambda: broken)
    with pytest.raises(EmbeddedServiceError, match="exited with code 1") as caught:
        start_embedded(data_dir, need_postgres=False, need_redis=True)
    assert "broken on purpose" in str(caught.value)
    assert read_running(data_dir) is None


def test_missing_redis_binary_is_a_clear_error(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_redis_binary", lambda: Path("/nonexistent/redis-server"))
    with pytest.raises(EmbeddedServiceError, match="/nonexistent/redis-server"):
        start_embedded(data_dir, need_postgres=False, need_redis=True)
