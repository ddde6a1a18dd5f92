"""The demo's one error: something kept it from finishing (printed as one line, exit code 1)."""

from __future__ import annotations

from engine.errors import EngineError


class DemoError(EngineError):
    """The demo could not run to the end; the message says what and where to look."""
