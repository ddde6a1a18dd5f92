"""Campaign statuses and the one table of which status may follow which."""

from __future__ import annotations

from enum import StrEnum

from engine.campaigns.errors import InvalidTransitionError


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


S = CampaignStatus

# The only status changes there are. A paused campaign returns to `scheduled` when it was
# paused before its start time, else to `running`. A paused campaign may also finish (its end
# time passed while paused) or fail (its channel went away).
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.RUNNING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.PAUSED, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.PAUSED, S.FINISHED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.SCHEDULED, S.FINISHED, S.CANCELLED, S.FAILED}),
    S.FINISHED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
TERMINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
# Statuses in which the sending engine may send (it still honours start time and send window).
SENDING = frozenset({S.RUNNING})

# How an operator would name the move to each status, for error messages.
_VERB = {
    S.DRAFT: "turned back into a draft",
    S.SCHEDULED: "scheduled",
    S.RUNNING: "started or resumed",
    S.PAUSED: "paused",
    S.FINISHED: "finished",
    S.CANCELLED: "cancelled",
    S.FAILED: "marked failed",
}


def can_transition(from_status: CampaignStatus, to_status: CampaignStatus) -> bool:
    return to_status in TRANSITIONS[from_status]


def check_transition(from_status: CampaignStatus, to_status: CampaignStatus) -> None:
    """Raise InvalidTransitionError, saying what is allowed instead, unless the move is valid."""
    if can_transition(from_status, to_status):
        return
    if from_status == to_status:
        message = f"The campaign is already {from_status.value}."
    elif from_status in TERMINAL:
        message = (
            f"The campaign is {from_status.value}; a {from_status.value} campaign cannot be "
            f"{_VERB[to_status]}."
        )
    else:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[from_status]))
        message = (
            f"A {from_status.value} campaign cannot be {_VERB[to_status]}; "
            f"from {from_status.value} it can become: {allowed}."
        )
    raise InvalidTransitionError(message, from_status=from_status, to_status=to_status)
