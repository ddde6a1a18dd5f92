"""Tenant settings: typed keys with defaults (engine/settings_registry.py), read and set."""

from __future__ import annotations

from pydantic import JsonValue, ValidationError

from api.errors import ApiError, ErrorDetail
from api.framework import ApiRouter, Call, NoBody, NoQuery, not_found
from api.rbac import Permission
from api.resources.common import Frozen
from engine.queries.settings import SettingView, get_settings
from engine.settings_registry import REGISTRY, Setting
from engine.store.settings import delete_setting, upsert_setting

router = ApiRouter("settings")


class SettingsOut(Frozen):
    items: list[SettingView]


class SettingIn(Frozen):
    value: JsonValue


@router.get(
    "/api/v1/settings", Permission.SETTINGS_READ, response=SettingsOut, summary="List settings"
)
async def list_settings(call: Call[NoBody, NoQuery]) -> SettingsOut:
    """Every setting with the value in force, its default and what it does."""
    async with call.tx() as conn:
        return SettingsOut(items=await get_settings(conn, call.tenant_id))


@router.get(
    "/api/v1/settings/{key:str}",
    Permission.SETTINGS_READ,
    response=SettingView,
    summary="Get a setting",
)
async def get_setting_endpoint(call: Call[NoBody, NoQuery]) -> SettingView:
    key = _setting(call).key
    async with call.tx() as conn:
        return (await get_settings(conn, call.tenant_id, [key]))[0]


@router.put(
    "/api/v1/settings/{key:str}",
    Permission.SETTINGS_MANAGE,
    body=SettingIn,
    response=SettingView,
    summary="Set a setting",
)
async def put_setting(call: Call[SettingIn, NoQuery]) -> SettingView:
    """404 for a key that does not exist; 422 naming `value` when it has the wrong type."""
    setting = _setting(call)
    try:
        typed = setting.validate(call.body.value)
    except ValidationError as exc:
        raise _invalid_value(exc) from None
    value = setting.to_json(typed)
    async with call.tx() as conn:
        await conn.run_sync(
            lambda c: upsert_setting(c, tenant_id=call.tenant_id, key=setting.key, value=value)
        )
        return (await get_settings(conn, call.tenant_id, [setting.key]))[0]


@router.delete(
    "/api/v1/settings/{key:str}",
    Permission.SETTINGS_MANAGE,
    response=SettingView,
    summary="Reset a setting to its default",
)
async def reset_setting(call: Call[NoBody, NoQuery]) -> SettingView:
    setting = _setting(call)
    async with call.tx() as conn:
        await conn.run_sync(lambda c: delete_setting(c, tenant_id=call.tenant_id, key=setting.key))
        return (await get_settings(conn, call.tenant_id, [setting.key]))[0]


def _setting(call: Call[SettingIn, NoQuery] | Call[NoBody, NoQuery]) -> Setting:
    setting = REGISTRY.get(call.params["key"])
    if setting is None:
        raise not_found("Setting")
    return setting


def _invalid_value(exc: ValidationError) -> ApiError:
    """422 naming `value` and the path inside it (e.g. `value.week.mon.0.end`)."""
    details = tuple(
        ErrorDetail(
            field=".".join(["value", *(str(p) for p in err["loc"])]),
            message=str(err["msg"]).removeprefix("Value error, "),
        )
        for err in exc.errors(include_url=False, include_input=False)
    )
    names = ", ".join(dict.fromkeys(d.field for d in details))
    return ApiError(422, "invalid_request", f"Invalid request body: {names}.", details=details)
