"""Posts a workload like a provider would: signed, concurrent, and retried with bounded
exponential backoff until a 2xx (honouring Retry-After), in a thread of its own."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.payloads import sign
from drills.workload import Effect, Post

MAX_ATTEMPTS = 20
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
REQUEST_TIMEOUT_S = 15.0


@dataclass
class DriveResult:
    sent: int = 0
    accepted: int = 0
    accepted_effects: set[Effect] = field(default_factory=set)
    gave_up: int = 0  # posts never answered 2xx within MAX_ATTEMPTS (not counted as lost)
    answers: Counter[str] = field(default_factory=Counter)  # every attempt's outcome
    last_ok_at: float = 0.0


class Driver:
    """Sends `posts` to `url` with `concurrency` connections; start() returns at once."""

    def __init__(
        self,
        url: str,
        posts: list[Post],
        *,
        secret: str,
        concurrency: int = 16,
        rate_per_s: float | None = None,
    ) -> None:
        self.url = url
        self._rate_per_s = rate_per_s  # None: as fast as the engine answers
        self.result = DriveResult(sent=len(posts))
        self._posts = posts
        self._secret = secret
        self._concurrency = concurrency
        self._next = 0
        self._thread = threading.Thread(target=self._run, name="drill-driver", daemon=True)
        self.done = threading.Event()
        self.progress = 0  # posts finished (accepted or given up)

    def start(self) -> Driver:
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the driver did not finish within {timeout_s:.0f}s")

    def first_ok_after(self, moment: float, timeout_s: float) -> float | None:
        """Wall time of the first 2xx answered after `moment`, waiting up to timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.result.last_ok_at > moment:
                return self.result.last_ok_at
            if self.done.is_set():
                return None
            time.sleep(0.05)
        return None

    def _run(self) -> None:
        try:
            asyncio.run(self._drive())
        finally:
            self.done.set()

    async def _drive(self) -> None:
        limits = httpx.Limits(max_connections=self._concurrency)
        started = asyncio.get_running_loop().time()
        async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
            await asyncio.gather(*(self._lane(client, started) for _ in range(self._concurrency)))

    async def _lane(self, client: httpx.AsyncClient, started: float) -> None:
        loop = asyncio.get_running_loop()
        while self._next < len(self._posts):
            index = self._next
            post = self._posts[index]
            self._next += 1
            if self._rate_per_s:
                await asyncio.sleep(max(0.0, started + index / self._rate_per_s - loop.time()))
            if await self._deliver(client, post):
                self.result.accepted += 1
                self.result.accepted_effects.add(post.effect)
            else:
                self.result.gave_up += 1
            self.progress += 1

    async def _deliver(self, client: httpx.AsyncClient, post: Post) -> bool:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(post.body, self._secret),
        }
        for attempt in range(MAX_ATTEMPTS):
            retry_after: float | None = None
            try:
                answer = await client.post(self.url, content=post.body, headers=headers)
            except httpx.HTTPError as exc:
                self.result.answers[type(exc).__name__] += 1
            else:
                self.result.answers[str(answer.status_code)] += 1
                if answer.is_success:
                    self.result.last_ok_at = time.time()
                    return True
                if answer.status_code < 500 and answer.status_code != 429:
                    return False  # the provider would not retry a 4xx either
                retry_after = _seconds(answer.headers.get("retry-after"))
            backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2**attempt)
            delay = retry_after if retry_after is not None else random.uniform(0, backoff)
            await asyncio.sleep(min(delay, MAX_BACKOFF_S))
        return False


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
