"""Who may do what: every permission an endpoint can demand, and each role's set, in one table."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from engine.security import Role

if TYPE_CHECKING:
    from api.auth import Principal


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
    CONTACTS_PRIVACY = "contacts.privacy"  # export or erase everything held about a contact
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
    AUTOMATION_MANAGE = "automation.manage"  # chat flows, auto-replies, auto-tag rules
    INTEGRATIONS_MANAGE = "integrations.manage"  # API clients and outbound webhooks
    STATS_READ = "stats.read"
    SLA_READ = "sla.read"  # SLA policies and the breaches recorded against them
    SLA_MANAGE = "sla.manage"  # create, change and delete SLA policies
    CAMPAIGNS_READ = "campaigns.read"  # campaigns, their progress, reports and exports
    CAMPAIGNS_MANAGE = "campaigns.manage"  # create, import lists, start, pause, cancel
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
    Permission.SLA_READ,
    Permission.CAMPAIGNS_READ,
    Permission.CAMPAIGNS_MANAGE,
}
_ADMIN = _SUPERVISOR | {
    Permission.QUEUES_MANAGE,
    Permission.USERS_MANAGE,
    Permission.CHANNELS_MANAGE,
    Permission.SETTINGS_MANAGE,
    Permission.INTEGRATIONS_MANAGE,
    Permission.SLA_MANAGE,
    Permission.CONTACTS_PRIVACY,
    Permission.AUTOMATION_MANAGE,
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


class ClientPermission(StrEnum):
    """What an admin may grant an API client: a tenant system's needs, nothing that manages
    the tenant (users, channels, settings, other clients) or acts as a person (SELF)."""

    TICKETS_READ = Permission.TICKETS_READ.value
    TICKETS_READ_ALL = Permission.TICKETS_READ_ALL.value
    MESSAGES_SEND = Permission.MESSAGES_SEND.value
    CONTACTS_READ = Permission.CONTACTS_READ.value
    CONTACTS_WRITE = Permission.CONTACTS_WRITE.value
    QUEUES_READ = Permission.QUEUES_READ.value
    CHANNELS_READ = Permission.CHANNELS_READ.value


_CLIENT_GRANTABLE = frozenset(p.value for p in ClientPermission)


def may(principal: Principal, permission: Permission) -> bool:
    """Whether this caller holds `permission`: by role for a user, by grant for an API client.

    Handlers deciding anything by permission use this, not the role: a client's role is a
    placeholder ("agent") and grants it nothing.
    """
    if principal.client_permissions is not None:
        granted = principal.client_permissions & _CLIENT_GRANTABLE
        return permission.value in granted
    return allowed(principal.role, permission)


def permits(principal: Principal, permission: Permission | None) -> bool:
    """The endpoint check: its one permission, or for a public endpoint (None) any signed-in
    user. An API client needs an explicit grant everywhere."""
    if permission is None:
        return not principal.is_client
    return may(principal, permission)


def sees_all_tickets(role: Role) -> bool:
    """Supervisors and up see every ticket; agents only their queues, their own and wallets."""
    return allowed(role, Permission.TICKETS_READ_ALL)
