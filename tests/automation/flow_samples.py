"""Chat-flow definitions the automation tests share: a menu bot in the shape admins save."""

from __future__ import annotations

from typing import Any


def menu_flow(*, sales_queue: int = 1, support_queue: int = 2, **overrides: Any) -> dict[str, Any]:
    """Greets, offers a menu, moves to a queue on "1"/"2", goes to a sub-menu on "3"."""
    flow: dict[str, Any] = {
        "start": "menu",
        "welcome": "{{greeting}}, {{first_name|there}}! Welcome to Acme.",
        "nodes": [
            {
                "id": "menu",
                "messages": [{"text": "How can we help?"}],
                "options": ["1 - Sales", "2 - Support", "3 - Opening hours"],
                "conditions": [
                    {
                        "match": "exact",
                        "values": ["1", "sales"],
                        "reply": "Connecting you to sales.",
                        "action": {"type": "move_to_queue", "queue_id": sales_queue},
                    },
                    {
                        "match": "exact",
                        "values": ["2", "Support"],
                        "action": {"type": "move_to_queue", "queue_id": support_queue},
                    },
                    {
                        "match": "exact",
                        "values": ["3"],
                        "action": {"type": "go_to", "node": "hours"},
                    },
                ],
            },
            {
                "id": "hours",
                "messages": [{"text": "We open 9-18. Anything else?"}],
                "conditions": [
                    {"match": "regex", "pattern": "^(no|nope)\\b", "action": {"type": "close"}},
                    {"match": "any", "action": {"type": "go_to", "node": "menu"}},
                ],
            },
        ],
        "not_understood": {
            "message": "Sorry, please answer with a number.",
            "return_to": "current",
        },
        "max_retries": 2,
        "close_keywords": ["sair", "exit"],
    }
    flow.update(overrides)
    return flow
