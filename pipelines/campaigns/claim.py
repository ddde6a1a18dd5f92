"""claim ▸ render ▸ record: recipients due now get a pending message, in the claim's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from engine.campaigns import Variant, variable_values
from engine.events import ChannelType
from engine.store import api_clients as people
from engine.store import campaign_sending as store
from engine.store.conversations import insert_ticket_event
from pipelines.inbound.enrich import contact_lock_key
from pipelines.outbound.request import SendRequest, record_send

# Channels that reach a person by phone number: a number alone is an address there.
_PHONE_CHANNELS = frozenset({ChannelType.WHATSAPP, ChannelType.SMS})


@dataclass
class Claimed:
    """What one claim did: rows claimed, messages recorded (to enqueue after commit), rows
    skipped and the outbox rows to publish."""

    claimed: int = 0
    message_ids: list[int] = field(default_factory=list)
    skipped: int = 0
    outbox_ids: list[int] = field(default_factory=list)


def skip_reason(r: store.Recipient) -> str | None:
    """Why this recipient must not get the message now (checked again at claim time: a contact
    may opt out, be merged or be suppressed after the audience was frozen). Same reasons, in
    the same order, as the freeze (engine.store.campaigns.SKIP_REASONS)."""
    if r.merged:
        return "merged"
    if r.opted_out:
        return "opted_out"
    if r.suppressed:
        return "suppressed"
    if r.unreachable:
        return "unreachable"
    return None


def claim_and_record(
    conn: Connection, campaign: store.SendingCampaign, variants: list[Variant], *, limit: int
) -> Claimed:
    """Claim up to `limit` pending recipients and record one pending `campaign` message each.

    All in the caller's transaction: if it does not commit, no row stays claimed and no
    message exists, so a crash between claim and record cannot leave a claimed row without
    its message. The caller enqueues the sends after commit. `variants` is not empty.
    """
    out = Claimed()
    recipients = store.lock_recipients(
        conn,
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        channel_type=campaign.channel_type,
        limit=limit,
    )
    out.claimed = len(recipients)
    skips: list[tuple[int, str]] = []
    sends: list[tuple[int, int]] = []
    for r in recipients:
        reason = skip_reason(r) or _address_problem(conn, campaign, r)
        if reason is None:
            recorded = _record(conn, campaign, r, variants)
            if recorded is None:
                reason = "empty_message"
            else:
                sends.append((r.row_id, recorded[0]))
                out.outbox_ids += recorded[1]
        if reason is not None:
            skips.append((r.row_id, reason))
    store.settle_claims(conn, tenant_id=campaign.tenant_id, sends=sends, skips=skips)
    out.skipped = len(skips)
    out.message_ids = [message_id for _, message_id in sends]
    return out


def _address_problem(
    conn: Connection, campaign: store.SendingCampaign, r: store.Recipient
) -> str | None:
    """None when the contact can be reached on the channel (linking a phone-only contact to a
    phone channel, under the inbound pipeline's per-person lock), else "no_address"."""
    if r.address is not None:
        return None
    kind = campaign.channel_type
    if kind not in _PHONE_CHANNELS or r.phone is None:
        return "no_address"
    people.lock_person(conn, contact_lock_key(campaign.tenant_id, kind, r.phone, r.phone))
    linked = store.link_identity(
        conn,
        tenant_id=campaign.tenant_id,
        contact_id=r.contact_id,
        channel_type=kind,
        identity_key=r.phone,
        # WhatsApp addresses people by their number without the plus (the wa_id).
        external_id=r.phone.lstrip("+") if kind is ChannelType.WHATSAPP else r.phone,
    )
    return None if linked else "no_address"


def _record(
    conn: Connection, campaign: store.SendingCampaign, r: store.Recipient, variants: list[Variant]
) -> tuple[int, list[int]] | None:
    """Render the recipient's variant and record it pending: (message id, outbox ids), or None
    when the rendered text is empty (a body of variables the contact has no values for)."""
    ticket_id, protocol, created = store.get_campaign_ticket(
        conn, tenant_id=campaign.tenant_id, channel_id=campaign.channel_id, contact_id=r.contact_id
    )
    if created:
        insert_ticket_event(
            conn,
            tenant_id=campaign.tenant_id,
            ticket_id=ticket_id,
            type="created",
            data={"status": "closed", "protocol": protocol, "source": "campaign"},
        )
    # The freeze draws a variant per contact; a row without one (older data) gets a stable one.
    index = (r.variant if r.variant is not None else r.contact_id) % len(variants)
    variant = variants[index]
    values = variable_values(name=r.name, phone=r.phone, email=r.email, protocol=protocol)
    body = variant.render(values).strip()
    if not body:
        return None
    recorded = record_send(
        conn,
        tenant_id=campaign.tenant_id,
        ticket_id=ticket_id,
        request=SendRequest.model_validate(
            {"body": body, "media_url": variant.media_url, "media_type": variant.media_type}
        ),
        user_id=None,
        send_type="campaign",
        event_data={"campaign_id": campaign.id, "variant": index + 1},
    )
    return recorded.message_id, recorded.outbox_ids
