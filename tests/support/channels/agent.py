"""The tenant's admin over the REST API: log in, read tickets, reply, wait for statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.harness import RunningEngine, Seeded, wait_until


class Agent:
    """The tenant's admin, logged in over HTTP, doing what the ticket screen does."""

    def __init__(self, engine: RunningEngine, seeded: Seeded) -> None:
        self._client = engine.client()
        response = self._client.post(
            "/api/v1/auth/login",
            json={"email": seeded.admin_email, "password": seeded.admin_password},
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        self._client.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, json: Any = None) -> Any:
        """Any request; the raw response, for tests that look at the status code."""
        return self._client.request(method, path, json=json)

    def get(self, path: str) -> Any:
        response = self._client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def tickets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/api/v1/tickets")["items"]
        return items

    def only_ticket(self) -> dict[str, Any]:
        tickets = self.tickets()
        assert len(tickets) == 1, tickets
        return tickets[0]

    def messages(self, ticket_id: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/api/v1/tickets/{ticket_id}/messages")["items"]
        return items

    def message(self, ticket_id: int, message_id: int) -> dict[str, Any]:
        return next(m for m in self.messages(ticket_id) if m["id"] == message_id)

    def contact(self, contact_id: int) -> dict[str, Any]:
        contact: dict[str, Any] = self.get(f"/api/v1/contacts/{contact_id}")
        return contact

    def reply(self, ticket_id: int, body: str) -> dict[str, Any]:
        response = self._client.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": body})
        assert response.status_code == 202, response.text
        message: dict[str, Any] = response.json()
        return message

    def wait_for(
        self,
        ticket_id: int,
        message_id: int,
        done: Callable[[dict[str, Any]], bool],
        timeout_s: float = 15.0,
        what: str = "",
    ) -> dict[str, Any]:
        """The message once `done(message)` holds, polling what the ticket screen reads."""
        seen: dict[str, Any] = {}

        def check() -> bool:
            seen.update(self.message(ticket_id, message_id))
            return done(seen)

        try:
            wait_until(check, timeout_s, what)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}; message is {seen}") from None
        return seen

    def wait_for_status(
        self, ticket_id: int, message_id: int, status: str, timeout_s: float = 15.0
    ) -> dict[str, Any]:
        return self.wait_for(
            ticket_id, message_id, lambda m: m["status"] == status, timeout_s, f"status {status}"
        )
