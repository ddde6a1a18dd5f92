"""The short text a MalformedEvent keeps of the part it could not read."""

from __future__ import annotations

from typing import Any

import orjson


def fragment_text(fragment: Any, max_chars: int) -> str:
    """`fragment` as JSON, cut to `max_chars`. A fragment JSON cannot hold (nested past
    orjson's limit, an integer past 64 bits) is named by its type instead of crashing the parse."""
    try:
        return orjson.dumps(fragment).decode()[:max_chars]
    except orjson.JSONEncodeError as exc:
        return f"<{type(fragment).__name__} not shown: {exc}>"[:max_chars]
