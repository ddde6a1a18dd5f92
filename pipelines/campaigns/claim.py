"""claim ▸ render ▸ record: recipients due now get a pending message, in the claim's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from engine.campaigns import Variant, variable_values
from engine.events import ChannelType
from engine.store import api_clients as people
from engine.store import campaign_sending as store
from engine.store.conversations import insert_ticket_event
from pipelines.inbound.enrich import contact_lock_key
from pipelines.outbound.request import SendRequest, TemplateRequest, record_send
from pipelines.outbound.send import SESSION_WINDOW

# Channels that reach a person by phone number: a number alone is an address there.
_PHONE_CHANNELS = frozenset({ChannelType.WHATSAPP, ChannelType.SMS})
# Free-form text goes to contacts who wrote within this; others get the variant's template.
# Short of the provider's 24 hours: a text claimed at 23:59 would be refused when it is sent.
TEXT_WINDOW = SESSION_WINDOW - timedelta(minutes=15)


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
    conn: Connection,
    campaign: store.SendingCampaign,
    variants: list[Variant],
    *,
    limit: int,
    now: datetime | None = None,
) -> Claimed:
    """Claim up to `limit` pending recipients and record one pending `campaign` message each.

    All in the caller's transaction: if it does not commit, no row stays claimed and no
    message exists, so a crash between claim and record cannot leave a claimed row without
    its message. The caller enqueues the sends after commit. `variants` is not empty. `now`
    (default: this host's clock) places each contact inside or outside the 24-hour window.
    """
    at = now or datetime.now(UTC)
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
            recorded = _record(conn, campaign, r, variants, at)
            if recorded is None:
                reason = "empty_message"  # or an empty template parameter
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
    conn: Connection,
    campaign: store.SendingCampaign,
    r: store.Recipient,
    variants: list[Variant],
    now: datetime,
) -> tuple[int, list[int]] | None:
    """Render the recipient's variant and record it pending: (message id, outbox ids), or None
    when the rendered text is empty (a body of variables the contact has no values for) or a
    template parameter is."""
    ticket = store.get_campaign_ticket(
        conn, tenant_id=campaign.tenant_id, channel_id=campaign.channel_id, contact_id=r.contact_id
    )
    if ticket.created:
        insert_ticket_event(
            conn,
            tenant_id=campaign.tenant_id,
            ticket_id=ticket.id,
            type="created",
            data={"status": "closed", "protocol": ticket.protocol, "source": "campaign"},
        )
    # The freeze draws a variant per contact; a row without one (older data) gets a stable one.
    index = (r.variant if r.variant is not None else r.contact_id) % len(variants)
    variant = variants[index]
    values = variable_values(name=r.name, phone=r.phone, email=r.email, protocol=ticket.protocol)
    request = _request(campaign, variant, values, ticket.last_inbound_at, now)
    if request is None:
        return None
    recorded = record_send(
        conn,
        tenant_id=campaign.tenant_id,
        ticket_id=ticket.id,
        request=request,
        user_id=None,
        send_type="campaign",
        event_data={"campaign_id": campaign.id, "variant": index + 1},
    )
    return recorded.message_id, recorded.outbox_ids


def _request(
    campaign: store.SendingCampaign,
    variant: Variant,
    values: dict[str, str],
    last_inbound_at: datetime | None,
    now: datetime,
) -> SendRequest | None:
    """The variant's text, or its WhatsApp template for a contact outside the 24-hour window
    (a variant without a template sends the text, which the send refuses: outside_window)."""
    template = variant.template
    outside = last_inbound_at is None or now - last_inbound_at > TEXT_WINDOW
    if template is not None and campaign.channel_type is ChannelType.WHATSAPP and outside:
        params = template.render_params(values)
        if params is None:
            return None
        return SendRequest(
            template=TemplateRequest(
                name=template.name, language=template.language, parameters=params
            )
        )
    body = variant.render(values).strip()
    if not body:
        return None
    return SendRequest.model_validate(
        {"body": body, "media_url": variant.media_url, "media_type": variant.media_type}
    )
