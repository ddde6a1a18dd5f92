"""Twilio's X-Twilio-Signature: base64 HMAC-SHA1(auth token, URL + sorted POST names and values)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import SplitResult, urlsplit, urlunsplit

from adapters.twilio.payloads import form_pairs
from engine.errors import InvalidPayloadError, SignatureMismatchError
from engine.events import ChannelSecrets, WebhookRequest

_DEFAULT_PORTS = {"https": 443, "http": 80}


def compute_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The signature Twilio sends for a POST of `params` to `url`.

    Names in code-point order, a repeated name's values in order too (as Twilio's
    RequestValidator does), each appended as name + value with no separator.
    """
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _without_port(parts: SplitResult) -> str:
    if parts.port is None:
        return urlunsplit(parts)
    host, _, _ = parts.netloc.rpartition(":")
    return urlunsplit(parts._replace(netloc=host))


def _with_port(parts: SplitResult) -> str:
    default = _DEFAULT_PORTS.get(parts.scheme)
    if parts.port is not None or default is None:
        return urlunsplit(parts)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))


def signed_url_forms(url: str) -> set[str]:
    """The URL as received, without its port and with the default one.

    Twilio signs the URL as configured in the console, which may or may not spell the
    port; a proxy in front of us may add or drop it. Its own validator tries both.
    """
    forms = {url}
    try:
        parts = urlsplit(url)
        forms |= {_without_port(parts), _with_port(parts)}
    except ValueError:  # a port that is not a number: only the URL as received can match
        pass
    return forms


def verify_twilio_signature(request: WebhookRequest, secrets: ChannelSecrets) -> None:
    """Raise SignatureMismatchError unless the header signs this URL and these form fields."""
    if not secrets.auth_token:
        raise SignatureMismatchError("no auth token configured for this channel")
    header = request.header("x-twilio-signature")
    if header is None:
        raise SignatureMismatchError("missing X-Twilio-Signature header")
    try:
        params = form_pairs(request.body)
    except InvalidPayloadError:
        raise SignatureMismatchError("body is not a UTF-8 form, so it cannot be signed") from None
    given = header.strip().encode()
    matches = [
        hmac.compare_digest(compute_signature(secrets.auth_token, url, params).encode(), given)
        for url in sorted(signed_url_forms(request.url))
    ]
    if not any(matches):
        raise SignatureMismatchError("X-Twilio-Signature does not match the URL and form")
