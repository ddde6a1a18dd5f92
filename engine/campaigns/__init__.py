"""The campaign domain: statuses and transitions, variants, send windows, audiences, CSV lists."""

from __future__ import annotations

from engine.campaigns.audience import Audience
from engine.campaigns.csv_import import ImportRow, ParsedCsv, RowError, parse_csv
from engine.campaigns.errors import (
    CampaignError,
    CampaignInputError,
    CampaignStateError,
    CsvImportError,
    InvalidTransitionError,
)
from engine.campaigns.status import (
    SENDING,
    TERMINAL,
    TRANSITIONS,
    CampaignStatus,
    can_transition,
    check_transition,
)
from engine.campaigns.templates import WhatsAppTemplate
from engine.campaigns.variables import (
    KNOWN_VARIABLES,
    check_variables,
    render,
    variable_values,
    variables_in,
)
from engine.campaigns.variants import Variant, Variants
from engine.campaigns.window import WEEKDAYS, SendWindow, TimeZoneName, Weekday, zone

__all__ = [
    "KNOWN_VARIABLES",
    "SENDING",
    "TERMINAL",
    "TRANSITIONS",
    "WEEKDAYS",
    "Audience",
    "CampaignError",
    "CampaignInputError",
    "CampaignStateError",
    "CampaignStatus",
    "CsvImportError",
    "ImportRow",
    "InvalidTransitionError",
    "ParsedCsv",
    "RowError",
    "SendWindow",
    "TimeZoneName",
    "Variant",
    "Variants",
    "Weekday",
    "WhatsAppTemplate",
    "can_transition",
    "check_transition",
    "check_variables",
    "parse_csv",
    "render",
    "variable_values",
    "variables_in",
    "zone",
]
