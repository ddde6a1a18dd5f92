"""Starting the processes under test: uvicorn servers, Dramatiq workers, the load generator."""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import asdict

from bench.infra import BenchError
from bench.loadgen import LoadResult, LoadSpec
from bench.models import Plan
from bench.payloads import PayloadSpec
from bench.procs import Child, Processes, free_port, python_argv

JWT_SECRET = "bench-jwt-secret-0123456789-abcdef"
# Tuning knobs passed through from the caller's environment to FlowDesk's processes.
TUNABLES = (
    "INGEST_BATCH_MAX",
    "INGEST_BATCH_WAIT_MS",
    "PIPELINE_BATCH_MAX",
    "DB_POOL_SIZE",
    "SEND_CONCURRENCY",
    "LOG_LEVEL",
    "LOG_FORMAT",
)


def flowdesk_env(plan: Plan, prefix: str) -> dict[str, str]:
    """FlowDesk's configuration for a run: environment variables only, as in production."""
    env = {k: v for k, v in os.environ.items() if k not in TUNABLES}
    env.update(
        {
            "DATABASE_URL": plan.services.dsn(),
            "REDIS_URI": plan.services.redis_url,
            "QUEUE_PREFIX": prefix,
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            "WORKER_THREADS": str(plan.threads),
            **plan.tunables,
        }
    )
    env.pop("AMQP_URL", None)  # both sides run on Redis
    return env


def start_web(procs: Processes, name: str, factory: str, env: dict[str, str]) -> tuple[Child, int]:
    """uvicorn with identical settings for every target; only the app factory differs."""
    port = free_port()
    argv = python_argv(
        *("-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)),
        *("--log-level", "warning", "--no-access-log"),
    )
    child = procs.start(name, argv, env)
    procs.wait_for(f"{name} to listen", lambda: _healthy(port), timeout_s=30, watch=[child])
    return child, port


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_worker(
    procs: Processes, name: str, module: str, plan: Plan, env: dict[str, str]
) -> Child:
    """`dramatiq <module> -p 1 -t <threads>`: the same worker settings for every target."""
    argv = python_argv("-m", "dramatiq", module, "-p", "1", "-t", str(plan.threads))
    return procs.start(name, argv, env)


def start_load(
    procs: Processes,
    name: str,
    plan: Plan,
    *,
    port: int,
    channel_id: int,
    payload: PayloadSpec,
    warmup: int,
) -> Child:
    """Start the load generator; it prints its LoadResult as JSON when done."""
    spec = LoadSpec(
        host="127.0.0.1",
        port=port,
        path=f"/webhooks/whatsapp/{channel_id}",
        warmup=warmup,
        count=payload.count - warmup,
        concurrency=plan.concurrency,
        timeout_s=plan.timeout_s,
        payload=payload,
    )
    argv = python_argv("-m", "bench.loadgen", json.dumps(asdict(spec)))
    return procs.start(name, argv, dict(os.environ), capture=True)


def load_result(procs: Processes, child: Child, plan: Plan) -> LoadResult:
    """Wait for the load generator; every request must have been answered 2xx."""
    try:
        out, _ = child.popen.communicate(timeout=plan.timeout_s + 30)
    except Exception:
        procs.stop(child)
        raise BenchError(f"{child.name} did not finish in time") from None
    if child.popen.returncode != 0:
        raise BenchError(f"{child.name} failed; log tail:\n{child.log_tail()}")
    result = LoadResult(**json.loads(out.decode().strip().splitlines()[-1]))
    if result.errors:
        raise BenchError(f"{child.name}: {result.errors} requests failed: {result.statuses}")
    return result


def not_failed(child: Child) -> bool:
    """True unless `child` already exited with an error (then raise rather than wait on)."""
    code = child.popen.poll()
    if code not in (None, 0):
        raise BenchError(f"{child.name} exited with {code}; log tail:\n{child.log_tail()}")
    return True
