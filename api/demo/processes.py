"""The engine's web, worker and scheduler as real child processes, started and stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped,unused-ignore]

from api.demo.errors import DemoError
from config import Settings
from engine.runtime import Runtime

HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 25
OUR_PROCESS_NAMES = ("flowdesk", "dramatiq", "api.cli", "postgres", "redis-server")


@dataclass
class _Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


def child_env(settings: Settings, runtime: Runtime) -> dict[str, str]:
    """The demo's own settings, pointed at the services this run resolved.

    Children get DATABASE_URL/REDIS_URI explicitly (rather than finding the embedded servers
    through services.json), so they never try to start servers of their own.
    """
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None and value != "":
            env[name] = str(value)
    for redundant in ("DB_HOST", "REDIS_PASSWORD"):  # already part of the URLs below
        env.pop(redundant, None)
    env |= {
        "DATABASE_URL": runtime.database_url.replace("postgresql+psycopg://", "postgresql://", 1),
        "REDIS_URI": runtime.redis_url,
        "JWT_SECRET": runtime.jwt_secret,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flowdesk() -> list[str]:
    """The `flowdesk` console script next to this interpreter, or the module if there is none."""
    script = Path(sys.executable).with_name("flowdesk")
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


class EngineProcesses:
    """web + worker + scheduler, each in its own session so a Ctrl-C reaches only the demo,
    which then stops them in order. Logs go to `log_dir/<name>.log` (overwritten per run)."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: list[_Child] = []
        self.started: list[psutil.Process] = []  # every process of every tree, once stopped
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # The web's public URL is its real one: Twilio signs exactly the URL it posts to.
        self._env = {**env, "BACKEND_URL": self.base_url}

    def start(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("web", ["serve", "--host", "127.0.0.1", "--port", str(self.port)])
        self._spawn("worker", ["worker", "--processes", "1", "--threads", "4"])
        self._spawn("scheduler", ["scheduler"])

    def _spawn(self, name: str, args: list[str]) -> None:
        log_path = self._log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
                [*_flowdesk(), *args],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children.append(_Child(name, popen, log_path))

    def wait_healthy(self, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        """Block until GET /healthz answers 200; DemoError with the web log's tail if not."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as client:
            while True:
                self.check_alive()
                try:
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"the web process did not answer /healthz within {timeout_s:.0f}s\n"
                        + self.log_tail("web")
                    )
                time.sleep(0.2)

    def check_alive(self) -> None:
        """DemoError naming the first child that exited, with the tail of its log."""
        for child in self._children:
            code = child.popen.poll()
            if code is not None:
                raise DemoError(
                    f"the {child.name} process exited with code {code}\n"
                    + self.log_tail(child.name)
                )

    def log_tail(self, name: str) -> str:
        child = next(c for c in self._children if c.name == name)
        try:
            lines = child.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return f"(no log at {child.log_path})"
        return f"last lines of {child.log_path}:\n" + "\n".join(lines)

    def stop(self) -> list[str]:
        """SIGTERM every child (and, after STOP_TIMEOUT_S, SIGKILL what is left of its tree).

        Returns how each one ended, e.g. "worker: stopped (2 processes)". Safe to call twice.
        """
        trees: dict[str, list[psutil.Process]] = {}
        exited: dict[str, int | None] = {}
        for child in self._children:
            trees[child.name] = _tree(child.popen.pid)
            self.started += trees[child.name]
            exited[child.name] = child.popen.poll()
            if exited[child.name] is None:
                child.popen.send_signal(signal.SIGTERM)
        report = []
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self._children:
            procs = trees[child.name]
            _, alive = psutil.wait_procs(procs, timeout=max(0.1, deadline - time.monotonic()))
            for proc in alive:
                with suppress(psutil.NoSuchProcess):
                    proc.kill()
            psutil.wait_procs(alive, timeout=5)
            child.popen.wait()
            count = f"{len(procs)} process{'es' * (len(procs) != 1)}"
            if exited[child.name] is not None:
                report.append(f"{child.name}: had exited with code {exited[child.name]}")
            elif alive:
                report.append(f"{child.name}: killed after ignoring SIGTERM ({count})")
            else:
                report.append(f"{child.name}: stopped ({count})")
        self._children.clear()
        return report


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def reap_leftovers(started: Sequence[psutil.Process]) -> list[str]:
    """Kill what the demo started and is still alive; returns what had to be killed.

    Looks at `started` (engine process trees, embedded servers this run owned) and at any child
    of the demo named like an engine or server process. Other children of the demo (a shell's
    process substitution, say) are not ours to judge and are left alone.
    """
    candidates = list(started)
    candidates += [p for p in psutil.Process().children(recursive=True) if _looks_like_ours(p)]
    procs = list({p.pid: p for p in _alive(candidates)}.values())
    left = [f"{p.pid} {_name(p)}" for p in procs]
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)
    return left


def _looks_like_ours(proc: psutil.Process) -> bool:
    try:
        words = " ".join([proc.name(), *proc.cmdline()[:4]])
    except psutil.Error:
        return False
    return any(name in words for name in OUR_PROCESS_NAMES)


def processes_of(pids: Mapping[str, int]) -> list[psutil.Process]:
    """The live processes behind a services.json pid record, except its owner (us)."""
    return _alive([_process(pid) for role, pid in pids.items() if role != "owner"])


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _name(proc: psutil.Process) -> str:
    try:
        return str(proc.name())
    except psutil.NoSuchProcess:
        return "?"


def _alive(procs: Sequence[psutil.Process | None]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out
