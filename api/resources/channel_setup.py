"""Channel set-up as the API takes it, validated by the channel type's own model (as the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from adapters.registry import setup_models
from api.errors import ApiError, ErrorDetail
from engine.events import ChannelConfig, ChannelSecrets, ChannelType
from engine.store.channels import Channel

SECRET_NAMES = frozenset(ChannelSecrets.model_fields)
_CONFIG_NAMES = frozenset(ChannelConfig.model_fields)

Setup = tuple[str, ChannelConfig, ChannelSecrets]


def _fields(channel_type: ChannelType) -> list[str]:
    model = setup_models()[channel_type]
    assert issubclass(model, BaseModel)  # every registered set-up is a pydantic model
    return list(model.model_fields)


def secret_fields(channel_type: ChannelType) -> list[str]:
    """The credentials this channel type takes, in its set-up model's order."""
    return [n for n in _fields(channel_type) if n in SECRET_NAMES]


def _account_field(channel_type: ChannelType) -> str | None:
    """The set-up field that names the provider account (phone_number_id, page_id, address…).

    Telegram has none: the bot id comes from the token.
    """
    names = set(_fields(channel_type)) - SECRET_NAMES - _CONFIG_NAMES
    return names.pop() if len(names) == 1 else None


def validate_setup(
    channel_type: ChannelType, raw: Mapping[str, JsonValue], *, where: Mapping[str, str]
) -> Setup:
    """(external_id, config, secrets) from the set-up JSON; 422 naming each bad field.

    `where` says under which body key (`config` or `secrets`) a field was sent, so the error
    names the field the client actually wrote. Values are never echoed back.
    """
    try:
        setup = TypeAdapter(setup_models()[channel_type]).validate_python(dict(raw))
    except ValidationError as exc:
        details = tuple(
            ErrorDetail(
                field=_field_name(err["loc"], where),
                message=str(err["msg"]).removeprefix("Value error, "),
            )
            for err in exc.errors(include_url=False, include_input=False)
        )
        names = ", ".join(dict.fromkeys(d.field for d in details))
        raise ApiError(
            422, "invalid_request", f"Invalid request body: {names}.", details=details
        ) from None
    return setup.to_channel()


def merged_setup(
    channel: Channel,
    config: Mapping[str, JsonValue] | None,
    secrets: Mapping[str, JsonValue] | None,
) -> Setup:
    """The channel's stored set-up with `config` and `secrets` laid over it, validated again.

    A null in `config` resets that setting to its default; secrets sent replace stored ones
    and the others are kept.
    """
    fields = set(_fields(channel.type))
    current: dict[str, Any] = {}
    account = _account_field(channel.type)
    if account is not None:
        current[account] = channel.external_id
    stored = {
        **channel.config.model_dump(exclude_none=True),
        **channel.secrets.model_dump(exclude_none=True),
    }
    current.update({k: v for k, v in stored.items() if k in fields})
    where = {k: "secrets" if k in SECRET_NAMES else "config" for k in current}
    for key, value in (config or {}).items():
        where[key] = "config"
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    for key, value in (secrets or {}).items():
        where[key] = "secrets"
        current[key] = value
    return validate_setup(channel.type, current, where=where)


def check_split(
    channel_type: ChannelType,
    config: Mapping[str, JsonValue] | None,
    secrets: Mapping[str, JsonValue] | None,
) -> None:
    """Secrets go in `secrets` and settings in `config`: 422 naming each key in the wrong one."""
    allowed = set(secret_fields(channel_type))
    details = [
        ErrorDetail(field=f"config.{k}", message="is a secret: send it in secrets")
        for k in (config or {})
        if k in SECRET_NAMES
    ]
    details += [
        ErrorDetail(field=f"secrets.{k}", message=f"is not a secret of a {channel_type} channel")
        for k in (secrets or {})
        if k not in allowed
    ]
    details += [
        ErrorDetail(field=f"secrets.{k}", message="may not be null; send a new value")
        for k, v in (secrets or {}).items()
        if k in allowed and v is None
    ]
    if details:
        names = ", ".join(d.field for d in details)
        raise ApiError(
            422, "invalid_request", f"Invalid request body: {names}.", details=tuple(details)
        )


def no_nul(value: JsonValue) -> JsonValue:
    """Reject NUL characters anywhere in a JSON value: jsonb refuses them (a 422, not a 500)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


def _field_name(loc: tuple[int | str, ...], where: Mapping[str, str]) -> str:
    if not loc:
        return "config"
    head = str(loc[0])
    return ".".join([where.get(head, "config"), *(str(part) for part in loc)])
