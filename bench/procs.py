"""Child processes of a run: started with logs, stopped as whole trees, none left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.infra import BenchError

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.05


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


class Processes:
    """Starts children and guarantees, on close, that every process they spawned is gone."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        # (pid, create_time) of everything seen in our trees, to find orphans without pid reuse
        self._seen: set[tuple[int, float]] = set()

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, capture: bool = False
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else log,
            stderr=log,
        )
        log.close()
        child = Child(name, popen, log_path)
        self.children.append(child)
        self._remember(child)
        return child

    def _remember(self, child: Child) -> None:
        try:
            proc = psutil.Process(child.popen.pid)
            tree = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in tree:
            try:
                self._seen.add((p.pid, p.create_time()))
            except psutil.NoSuchProcess:
                continue

    def check_alive(self, child: Child) -> None:
        self._remember(child)
        code = child.popen.poll()
        if code is not None:
            raise BenchError(f"{child.name} exited with {code}; log tail:\n{child.log_tail()}")

    def wait_for(
        self, what: str, predicate: Callable[[], bool], *, timeout_s: float, watch: Sequence[Child]
    ) -> float:
        """Poll until `predicate()`; return the wall time it first held. Raise after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return time.time()
            for child in watch:
                self.check_alive(child)
            time.sleep(POLL_S)
        raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}")

    def run_to_end(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, timeout_s: float
    ) -> str:
        """Run a child to completion; return its stdout. Raise on timeout or failure."""
        child = self.start(name, argv, env, capture=True)
        try:
            out, _ = child.popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(child)
            raise BenchError(f"{name} did not finish within {timeout_s:.0f}s") from None
        if child.popen.returncode != 0:
            raise BenchError(
                f"{name} exited with {child.popen.returncode}; log tail:\n{child.log_tail()}"
            )
        return out.decode()

    def stop(self, child: Child, *, grace_s: float = 15.0) -> None:
        """SIGTERM the child (dramatiq and uvicorn shut their own children down), then kill."""
        self._remember(child)
        try:
            tree = [psutil.Process(child.popen.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        if child.popen.poll() is None:
            child.popen.send_signal(signal.SIGTERM)
        try:
            child.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.popen.kill()
            child.popen.wait(timeout=5)
        _, alive = psutil.wait_procs(tree, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(alive, timeout=5)
        if child.popen.stdout is not None:
            child.popen.stdout.close()

    def close(self) -> list[str]:
        """Stop every child still running; kill and report any process of ours still alive."""
        for child in reversed(self.children):
            self.stop(child)
        leftovers: list[str] = []
        for pid, created in sorted(self._seen):
            if pid == os.getpid():
                continue
            try:
                proc = psutil.Process(pid)
                if proc.create_time() != created or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                leftovers.append(f"{pid} {' '.join(proc.cmdline())[:80]}")
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        return leftovers
