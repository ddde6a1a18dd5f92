"""Runs the sandbox: uvicorn and the SMTP sink on threads, for tests, the demo and the CLI."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Self

import uvicorn

from adapters.sandbox.app import create_sandbox_app
from adapters.sandbox.smtp import SmtpSink
from adapters.sandbox.state import SandboxState

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class Sandbox:
    """The provider sandbox on 127.0.0.1: HTTP on `port`, SMTP on `smtp_port` (0 = any free).

    Use as a context manager, or call start() and stop().
    """

    def __init__(
        self,
        *,
        port: int = 0,
        smtp_port: int = 0,
        host: str = "127.0.0.1",
        state: SandboxState | None = None,
    ) -> None:
        self.host = host
        self.state = state if state is not None else SandboxState()
        config = uvicorn.Config(
            create_sandbox_app(self.state),
            host=host,
            port=port,
            log_config=None,  # leave the host process's logging alone
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._smtp = SmtpSink(self.state, host=host, port=smtp_port)
        self._port: int | None = None

    @property
    def http_url(self) -> str:
        """Base URL every adapter's api_base_url should point at, without a trailing slash."""
        if self._port is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.host}:{self._port}"

    @property
    def smtp_port(self) -> int:
        return self._smtp.port

    def start(self) -> Self:
        """Start both servers; returns once they accept connections.

        Raises RuntimeError when uvicorn does not come up (port taken, say).
        """
        self._thread = threading.Thread(
            target=self._serve_http, name="flowdesk-sandbox-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox HTTP server did not start on {self.host}")
            time.sleep(0.01)
        self._port = self._server.servers[0].sockets[0].getsockname()[1]
        try:
            self._smtp.start()
        except BaseException:
            self._stop_http()
            raise
        log.info("sandbox started", extra={"http_port": self._port, "smtp_port": self.smtp_port})
        return self

    def _serve_http(self) -> None:
        try:
            self._server.run()
        except SystemExit:
            # uvicorn exits when it cannot bind; start() sees the dead thread and says so.
            log.error("sandbox HTTP server exited", extra={"host": self.host})

    def _stop_http(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        if self._thread is None:
            return
        self._smtp.stop()
        self._stop_http()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    port: int,
    smtp_port: int,
    *,
    host: str = "127.0.0.1",
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve the sandbox until SIGINT or SIGTERM (the `flowdesk sandbox` command).

    `on_ready` runs once both servers listen, e.g. to print their addresses.
    """
    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(port=port, smtp_port=smtp_port, host=host) as sandbox:
            if on_ready is not None:
                on_ready(sandbox)
            # A bounded wait keeps the main thread responsive to signals on every platform.
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
