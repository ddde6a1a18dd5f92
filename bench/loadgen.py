"""Load generator process: N keep-alive HTTP/1.1 connections posting pre-signed webhooks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

from bench.payloads import PayloadSpec, signed_bodies

# A deliberately small asyncio client rather than httpx: on a two-core box the generator must
# stay far from saturating its core so that the server under test sets the pace. Both targets
# of a comparison are driven by this same code with the same settings.
READ_TIMEOUT_S = 30.0


class ProtocolError(Exception):
    """The server answered something this small client does not speak."""


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    path: str
    warmup: int
    count: int
    concurrency: int
    timeout_s: float
    payload: PayloadSpec


@dataclass(frozen=True)
class LoadResult:
    count: int
    ok: int
    errors: int
    statuses: dict[str, int]
    elapsed_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_send_wall: float
    last_done_wall: float
    client_cpu: float
    concurrency: int


def build_requests(spec: LoadSpec) -> list[bytes]:
    head = f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
    out: list[bytes] = []
    for body, signature in signed_bodies(spec.payload):
        out.append(
            (
                f"{head}Content-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one response; the body is read and discarded."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise ProtocolError(f"unexpected status line {lines[0][:40]!r}")
    status = int(lines[0][9:12])
    length = 0
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            raise ProtocolError("chunked responses are not supported")
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


class Phase:
    """One run over a slice of requests with `concurrency` connections."""

    def __init__(self, spec: LoadSpec, requests: list[bytes]) -> None:
        self.spec = spec
        self.requests = requests
        self.next_index = 0
        self.latencies_s: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.first_send_wall = 0.0
        self.done_wall = 0.0

    async def connection(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while self.next_index < len(self.requests):
                request = self.requests[self.next_index]
                self.next_index += 1
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(self.spec.host, self.spec.port)
                if not self.first_send_wall:
                    self.first_send_wall = time.time()
                started = time.perf_counter()
                try:
                    writer.write(request)
                    status, keep_alive = await asyncio.wait_for(
                        read_response(reader), READ_TIMEOUT_S
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    self.statuses[type(exc).__name__] += 1
                    writer.close()
                    reader = writer = None
                    continue
                self.latencies_s.append(time.perf_counter() - started)
                self.statuses[str(status)] += 1
                if not keep_alive:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    async def run(self) -> float:
        started = time.perf_counter()
        tasks = [self.connection() for _ in range(min(self.spec.concurrency, len(self.requests)))]
        await asyncio.wait_for(asyncio.gather(*tasks), self.spec.timeout_s)
        self.done_wall = time.time()
        return time.perf_counter() - started


def percentile_ms(sorted_s: list[float], fraction: float) -> float:
    if not sorted_s:
        return 0.0
    return 1000 * sorted_s[min(len(sorted_s) - 1, int(fraction * len(sorted_s)))]


async def run(spec: LoadSpec) -> LoadResult:
    requests = build_requests(spec)
    if spec.warmup:
        await Phase(spec, requests[: spec.warmup]).run()
    phase = Phase(spec, requests[spec.warmup :])
    cpu_started = time.process_time()
    elapsed_s = await phase.run()
    cpu_s = time.process_time() - cpu_started
    latencies = sorted(phase.latencies_s)
    ok = sum(n for code, n in phase.statuses.items() if code.startswith("2"))
    return LoadResult(
        count=len(phase.requests),
        ok=ok,
        errors=len(phase.requests) - ok,
        statuses=dict(phase.statuses),
        elapsed_s=elapsed_s,
        rps=len(phase.requests) / elapsed_s,
        p50_ms=percentile_ms(latencies, 0.50),
        p90_ms=percentile_ms(latencies, 0.90),
        p99_ms=percentile_ms(latencies, 0.99),
        max_ms=percentile_ms(latencies, 1.0),
        first_send_wall=phase.first_send_wall,
        last_done_wall=phase.done_wall,
        client_cpu=cpu_s / elapsed_s,
        concurrency=spec.concurrency,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", help="LoadSpec as JSON")
    args = parser.parse_args(argv)
    raw = json.loads(args.spec)
    spec = LoadSpec(**{**raw, "payload": PayloadSpec(**raw["payload"])})
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
