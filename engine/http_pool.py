"""Threads for concurrent provider calls, each with its own HTTP client.

One httpx.Client is thread-safe, but its connection pool is guarded by one lock that every
request takes several times; with a dozen threads sending at once that lock (and the pool's
bookkeeping over every connection) costs more CPU than the requests themselves. A client per
thread keeps one connection per provider host per thread and nothing shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import httpx

T = TypeVar("T")


class HttpPool:
    """`threads` worker threads; submit(fn) runs fn(client) with that thread's own client."""

    def __init__(self, threads: int, client_factory: Callable[[], httpx.Client]) -> None:
        self.threads = threads
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="send")

    def submit(self, fn: Callable[[httpx.Client], T]) -> Future[T]:
        return self._executor.submit(self._run, fn)

    def _run(self, fn: Callable[[httpx.Client], T]) -> T:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
            with self._lock:
                self._clients.append(client)
        return fn(client)

    def shutdown(self) -> None:
        """Wait for running calls, then close every thread's client."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
