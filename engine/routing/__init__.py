"""Routing: business hours, ticket distribution among agents, lifecycle rules and SLA."""

from engine.routing.hours import (
    add_business_seconds,
    business_seconds_between,
    closed_period_start,
    effective_hours,
    is_open,
)

__all__ = [
    "add_business_seconds",
    "business_seconds_between",
    "closed_period_start",
    "effective_hours",
    "is_open",
]
