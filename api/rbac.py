"""Who may do what: every permission an endpoint can demand, and each role's set, in one table."""

from __future__ import annotations

from enum import StrEnum

from engine.security import Role


class Permission(StrEnum):
    """A capability an endpoint demands. Endpoints name exactly one (or none: public)."""

    TICKETS_READ = "tickets.read"  # tickets the caller may see (agents: their scope)
    TICKETS_READ_ALL = "tickets.read_all"  # every ticket of the tenant, ignoring agent scope
    TICKETS_ACT = "tickets.act"  # accept, transfer, close, reopen, mark read
    MESSAGES_SEND = "messages.send"
    MESSAGES_MODERATE = "messages.moderate"  # edit or delete sent messages
    CONTACTS_READ = "contacts.read"
    CONTACTS_WRITE = "contacts.write"
    CONTACTS_MERGE = "contacts.merge"
    TAGS_MANAGE = "tags.manage"
    QUEUES_READ = "queues.read"
    QUEUES_MANAGE = "queues.manage"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    CHANNELS_READ = "channels.read"
    CHANNELS_MANAGE = "channels.manage"
    SETTINGS_READ = "settings.read"
    SETTINGS_MANAGE = "settings.manage"
    FAST_REPLIES_READ = "fast_replies.read"
    FAST_REPLIES_MANAGE = "fast_replies.manage"
    INTEGRATIONS_MANAGE = "integrations.manage"  # API clients and outbound webhooks
    STATS_READ = "stats.read"
    TENANTS_MANAGE = "tenants.manage"  # the platform: create and suspend tenants
    SELF = "self"  # any signed-in user acting on their own account


_AGENT = frozenset(
    {
        Permission.TICKETS_READ,
        Permission.TICKETS_ACT,
        Permission.MESSAGES_SEND,
        Permission.CONTACTS_READ,
        Permission.CONTACTS_WRITE,
        Permission.QUEUES_READ,
        Permission.USERS_READ,
        Permission.CHANNELS_READ,
        Permission.SETTINGS_READ,
        Permission.FAST_REPLIES_READ,
        Permission.SELF,
    }
)
_SUPERVISOR = _AGENT | {
    Permission.TICKETS_READ_ALL,
    Permission.MESSAGES_MODERATE,
    Permission.CONTACTS_MERGE,
    Permission.TAGS_MANAGE,
    Permission.FAST_REPLIES_MANAGE,
    Permission.STATS_READ,
}
_ADMIN = _SUPERVISOR | {
    Permission.QUEUES_MANAGE,
    Permission.USERS_MANAGE,
    Permission.CHANNELS_MANAGE,
    Permission.SETTINGS_MANAGE,
    Permission.INTEGRATIONS_MANAGE,
}
# The platform operator runs tenants; a super user is also an admin of their own tenant.
_SUPER = _ADMIN | {Permission.TENANTS_MANAGE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "agent": _AGENT,
    "supervisor": frozenset(_SUPERVISOR),
    "admin": frozenset(_ADMIN),
    "super": frozenset(_SUPER),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def sees_all_tickets(role: Role) -> bool:
    """Supervisors and up see every ticket; agents only their queues, their own and wallets."""
    return allowed(role, Permission.TICKETS_READ_ALL)
