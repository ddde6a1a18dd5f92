"""Inbound authenticity: Mailgun's signed token fields, SendGrid's basic auth in the URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime

from adapters.email.form import FormError, parse_form
from engine.errors import SignatureMismatchError
from engine.events import WebhookRequest

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_SECONDS = re.compile(r"[0-9]{1,12}")


def verify_mailgun(
    request: WebhookRequest, signing_key: str, *, now: datetime, max_age_s: int, max_skew_s: int
) -> None:
    """HMAC-SHA256(signing key, timestamp + token) must equal `signature`, and be recent.

    Mailgun signs the token, not the body, so the age bound is what limits how long a
    captured signature could vouch for a forged body.
    """
    try:
        fields = parse_form(request.body, request.content_type).fields()
    except FormError:
        raise SignatureMismatchError("body is not a form carrying a Mailgun signature") from None
    timestamp, token, signature = (
        fields.get(name, b"").decode("ascii", "replace")
        for name in ("timestamp", "token", "signature")
    )
    if not (timestamp and token and signature):
        raise SignatureMismatchError("missing Mailgun timestamp, token or signature field")
    if not _SECONDS.fullmatch(timestamp) or not _HEX64.fullmatch(signature):
        raise SignatureMismatchError("malformed Mailgun timestamp or signature field")
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise SignatureMismatchError("Mailgun signature does not match")
    age_s = now.timestamp() - int(timestamp)
    if age_s > max_age_s:
        raise SignatureMismatchError("Mailgun signature timestamp is too old")
    if -age_s > max_skew_s:
        raise SignatureMismatchError("Mailgun signature timestamp is in the future")


def verify_basic_auth(request: WebhookRequest, webhook_secret: str) -> None:
    """`Authorization: Basic base64(user:secret)`: any user name, the password must match.

    SendGrid's Inbound Parse signs nothing; credentials in the configured URL
    (https://user:secret@host/…) are what it sends back on every POST.
    """
    header = request.header("authorization")
    if header is None:
        raise SignatureMismatchError("missing Authorization header")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise SignatureMismatchError("malformed Authorization header")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureMismatchError("malformed Authorization header") from None
    _, colon, password = decoded.partition(b":")
    if not colon:
        raise SignatureMismatchError("malformed Authorization header")
    if not hmac.compare_digest(password, webhook_secret.encode()):
        raise SignatureMismatchError("basic auth password does not match")
