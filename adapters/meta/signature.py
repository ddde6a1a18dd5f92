"""Meta's webhook signature: X-Hub-Signature-256 = HMAC-SHA256(app secret, raw body)."""

from __future__ import annotations

import hashlib
import hmac
import re

from engine.errors import SignatureMismatchError
from engine.events import ChannelSecrets, WebhookRequest

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def verify_hub_signature(request: WebhookRequest, secrets: ChannelSecrets) -> None:
    """Raise SignatureMismatchError unless the header signs exactly these bytes."""
    if not secrets.app_secret:
        raise SignatureMismatchError("no app secret configured for this channel")
    header = request.header("x-hub-signature-256")
    if header is None:
        raise SignatureMismatchError("missing X-Hub-Signature-256 header")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise SignatureMismatchError("malformed X-Hub-Signature-256 header")
    expected = hmac.new(secrets.app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group(1).lower()):
        raise SignatureMismatchError("X-Hub-Signature-256 does not match the body")
