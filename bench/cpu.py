"""CPU seconds spent by the processes under test: our children, PostgreSQL backends, Redis."""

from __future__ import annotations

import psutil  # type: ignore[import-untyped]
import redis

from bench import infra
from bench.infra import Services


def tree_cpu_s(pid: int) -> float:
    """User + system CPU of a process and its live descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def postgres_cpu_s(services: Services) -> float:
    """CPU of the backends currently connected to the bench database (ours alone)."""
    pids = infra.rows(
        services,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )
    total = 0.0
    for (pid,) in pids:
        try:
            t = psutil.Process(int(str(pid))).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += t.user + t.system
    return total


def redis_cpu_s(services: Services) -> float:
    """CPU of the whole Redis server (shared: other clients' work is included)."""
    info = redis.Redis.from_url(services.redis_url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
