"""Campaign errors: a request the campaign's state or an operator's input can never satisfy."""

from __future__ import annotations

from engine.errors import PermanentError


class CampaignError(PermanentError):
    """Base of the campaign domain's errors; the message is meant for the operator."""


class InvalidTransitionError(CampaignError):
    """A status change the transition table does not allow (e.g. resuming a finished campaign)."""

    def __init__(self, message: str, *, from_status: str, to_status: str) -> None:
        super().__init__(message)
        self.from_status = from_status
        self.to_status = to_status


class CsvImportError(CampaignError):
    """A CSV file that cannot be imported at all (no header, too large, too many rows)."""


class CampaignInputError(CampaignError):
    """A value the operator gave is wrong for this change (e.g. a start time in the past)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CampaignStateError(CampaignError):
    """The campaign's state stands in the way (its end time passed, it is not paused…)."""

    def __init__(self, message: str, *, field: str = "status") -> None:
        super().__init__(message)
        self.field = field
