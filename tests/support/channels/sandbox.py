"""The provider sandbox's control API (/_sandbox/…) over HTTP, as a test drives it."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxControl:
    """GET/POST /_sandbox/…: recorded requests and mail, faults, status callbacks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=10)

    def close(self) -> None:
        self._client.close()

    def reset(self) -> None:
        assert self._client.post("/_sandbox/reset").status_code == 204

    def fault(self, provider: str, mode: str, **spec: Any) -> None:
        response = self._client.post(
            "/_sandbox/faults", json={"provider": provider, "mode": mode, **spec}
        )
        assert response.status_code == 201, response.text

    def callbacks_to(self, url: str, *, provider: str, account: str, secret: str) -> None:
        response = self._client.post(
            "/_sandbox/callbacks",
            json={"provider": provider, "account": account, "url": url, "secret": secret},
        )
        assert response.status_code == 201, response.text

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        recorded: list[dict[str, Any]] = self._client.get(
            "/_sandbox/requests", params=params
        ).json()
        return recorded

    def mail(self) -> list[dict[str, Any]]:
        mail: list[dict[str, Any]] = self._client.get("/_sandbox/mail").json()
        return mail

    def deliveries(self) -> list[dict[str, Any]]:
        delivered: list[dict[str, Any]] = self._client.get("/_sandbox/callbacks/deliveries").json()
        return delivered
