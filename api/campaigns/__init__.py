"""Campaigns: drafts, CSV imports, scheduling and control, live progress, reports and exports."""

from api.campaigns import actions, crud, imports, reports
from api.campaigns.common import router

__all__ = ["actions", "crud", "imports", "reports", "router"]
