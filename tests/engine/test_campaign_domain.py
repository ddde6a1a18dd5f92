"""The campaign domain, as an operator meets it: which status changes are allowed, which
messages are accepted, and when a send window is open, across time zones, DST and midnight."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.campaigns import (
    TERMINAL,
    Audience,
    CampaignStatus,
    InvalidTransitionError,
    SendWindow,
    Variant,
    check_transition,
    parse_csv,
    render,
    variable_values,
    zone,
)
from engine.campaigns.csv_import import MAX_CSV_ROWS
from engine.campaigns.errors import CsvImportError

S = CampaignStatus
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# transitions --------------------------------------------------------------------------------

ALLOWED = {
    (S.DRAFT, S.SCHEDULED),
    (S.DRAFT, S.RUNNING),
    (S.DRAFT, S.CANCELLED),
    (S.SCHEDULED, S.RUNNING),
    (S.SCHEDULED, S.PAUSED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.FAILED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.FINISHED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.FAILED),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.SCHEDULED),
    (S.PAUSED, S.FINISHED),
    (S.PAUSED, S.CANCELLED),
    (S.PAUSED, S.FAILED),
}


@pytest.mark.parametrize("from_status", list(S))
@pytest.mark.parametrize("to_status", list(S))
def test_only_the_table_s_transitions_are_allowed(
    from_status: CampaignStatus, to_status: CampaignStatus
) -> None:
    if (from_status, to_status) in ALLOWED:
        check_transition(from_status, to_status)
        return
    with pytest.raises(InvalidTransitionError) as raised:
        check_transition(from_status, to_status)
    assert raised.value.from_status == from_status and raised.value.to_status == to_status
    assert from_status.value in str(raised.value)


def test_a_finished_campaign_cannot_be_resumed_and_the_message_says_so() -> None:
    with pytest.raises(InvalidTransitionError, match="finished campaign cannot be started"):
        check_transition(S.FINISHED, S.RUNNING)
    assert {S.FINISHED, S.CANCELLED, S.FAILED} == TERMINAL


def test_an_invalid_move_names_what_is_possible_instead() -> None:
    with pytest.raises(InvalidTransitionError) as raised:
        check_transition(S.DRAFT, S.PAUSED)
    assert "cancelled, running, scheduled" in str(raised.value)
    with pytest.raises(InvalidTransitionError, match="already paused"):
        check_transition(S.PAUSED, S.PAUSED)


# variants -----------------------------------------------------------------------------------


def test_a_variant_body_is_stripped_and_rendered_per_contact() -> None:
    v = Variant(body="  Hi {{first_name}}, ticket {{ protocol }} for {{name}}!  ")
    assert v.body == "Hi {{first_name}}, ticket {{ protocol }} for {{name}}!"
    values = variable_values(
        name="Maria da Silva", phone="+5511987654321", email=None, protocol="2024050100000001"
    )
    assert v.render(values) == "Hi Maria, ticket 2024050100000001 for Maria da Silva!"


def test_a_variable_falls_back_when_the_contact_has_no_value() -> None:
    values = variable_values(name=None, phone=None, email=None, protocol=None)
    assert render("Hello {{first_name|there}}!", values) == "Hello there!"
    assert render("Hello {{name}}!", values) == "Hello !"


@pytest.mark.parametrize("body", ["", "   ", "\n\t "])
def test_a_blank_body_is_not_a_variant(body: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Variant(body=body)
    assert raised.value.errors()[0]["loc"] == ("body",)


def test_an_unknown_variable_is_rejected_naming_it() -> None:
    with pytest.raises(ValidationError) as raised:
        Variant(body="Olá {{nome}}, tudo bem?")
    message = raised.value.errors()[0]["msg"]
    assert "unknown variable {{nome}}" in message
    assert "{{first_name}}" in message  # and says which ones exist


def test_body_length_and_media_rules() -> None:
    Variant(body="x" * 4096)
    with pytest.raises(ValidationError):
        Variant(body="x" * 4097)
    with pytest.raises(ValidationError, match="media_type needs media_url"):
        Variant(body="see", media_type="image")
    with pytest.raises(ValidationError, match="http or https"):
        Variant(body="see", media_url="ftp://files.example/a.png")
    ok = Variant(body="see", media_url="https://cdn.example/a.png", media_type="image")
    assert ok.media_url == "https://cdn.example/a.png"


def test_a_long_name_cannot_make_the_message_unsendable() -> None:
    body = "x" * 4090 + " {{name}}"
    assert len(render(body, {"name": "y" * 100})) == 4096


# audience -----------------------------------------------------------------------------------


def test_an_audience_is_exactly_one_kind() -> None:
    assert Audience(tag_ids=[3, 3, 4]).tag_ids == [3, 4]
    with pytest.raises(ValidationError, match="exactly one"):
        Audience(tag_ids=[1], contact_ids=[2])
    with pytest.raises(ValidationError, match="exactly one"):
        Audience()


# send windows -------------------------------------------------------------------------------


def test_window_days_and_times_are_validated() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        SendWindow(start="08:00", end="08:00")
    with pytest.raises(ValidationError):
        SendWindow(start="08:00", end="20:00", days=["funday"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        SendWindow(start="08:00", end="20:00", days=[])
    with pytest.raises(ValidationError):
        SendWindow(start="25:00", end="20:00")
    w = SendWindow(start="08:00", end="20:00", days=["fri", "mon", "fri"])
    assert w.days == ["mon", "fri"]
    with pytest.raises(ValueError, match="not an IANA time zone"):
        zone("Mars/Olympus_Mons")


def test_the_window_is_read_on_the_tenant_s_wall_clock() -> None:
    w = SendWindow(start="08:00", end="20:00")
    # 10:30 UTC is 07:30 in São Paulo (UTC-3): still closed there, open in Berlin.
    at = utc(2024, 5, 6, 10, 30)
    assert not w.is_open(at, SAO_PAULO)
    assert w.is_open(at, BERLIN)
    assert w.next_open(at, SAO_PAULO) == utc(2024, 5, 6, 11, 0)
    assert w.next_open(at, BERLIN) == at  # open: now
    # 20:00 local is closed (end is exclusive); the next opening is tomorrow 08:00.
    assert not w.is_open(utc(2024, 5, 6, 23, 0), SAO_PAULO)
    assert w.next_open(utc(2024, 5, 6, 23, 0), SAO_PAULO) == utc(2024, 5, 7, 11, 0)


def test_closed_days_are_skipped() -> None:
    weekdays = SendWindow(start="09:00", end="18:00", days=["mon", "tue", "wed", "thu", "fri"])
    friday_evening = utc(2024, 5, 10, 22, 0)  # Friday 19:00 in São Paulo
    assert weekdays.next_open(friday_evening, SAO_PAULO) == utc(2024, 5, 13, 12, 0)  # Monday
    assert not weekdays.is_open(utc(2024, 5, 11, 15, 0), SAO_PAULO)  # Saturday noon


def test_a_window_spanning_midnight_belongs_to_the_day_it_opens() -> None:
    nights = SendWindow(start="22:00", end="02:00", days=["fri"])
    tz = BERLIN  # UTC+2 in May
    assert nights.is_open(utc(2024, 5, 10, 20, 30), tz)  # Friday 22:30
    assert nights.is_open(utc(2024, 5, 10, 23, 30), tz)  # Saturday 01:30, Friday's night
    assert not nights.is_open(utc(2024, 5, 11, 0, 0), tz)  # Saturday 02:00: closed
    assert not nights.is_open(utc(2024, 5, 11, 20, 30), tz)  # Saturday 22:30: not a day of it
    assert not nights.is_open(utc(2024, 5, 9, 23, 30), tz)  # Friday 01:30 is Thursday's night
    assert nights.next_open(utc(2024, 5, 11, 0, 0), tz) == utc(2024, 5, 17, 20, 0)


def test_dst_spring_forward_moves_an_opening_inside_the_skipped_hour() -> None:
    # New York, 10 March 2024: clocks jump from 02:00 to 03:00.
    w = SendWindow(start="02:30", end="05:00")
    opens = w.next_open(utc(2024, 3, 10, 5, 0), NEW_YORK)  # 00:00 EST
    assert opens == utc(2024, 3, 10, 7, 0)  # 03:00 EDT, the first instant after the jump
    assert opens.astimezone(NEW_YORK).hour == 3
    assert w.is_open(opens, NEW_YORK)
    # Every day the same wall-clock hours, whatever the offset: 08:00 is 13:00 UTC in
    # winter and 12:00 UTC in summer.
    day = SendWindow(start="08:00", end="20:00")
    assert day.next_open(utc(2024, 3, 9, 2, 0), NEW_YORK) == utc(2024, 3, 9, 13, 0)
    assert day.next_open(utc(2024, 3, 11, 2, 0), NEW_YORK) == utc(2024, 3, 11, 12, 0)


def test_a_window_inside_the_skipped_hour_does_not_open_that_day() -> None:
    w = SendWindow(start="02:10", end="02:50")
    assert w.next_open(utc(2024, 3, 10, 5, 0), NEW_YORK) == utc(2024, 3, 11, 6, 10)


def test_dst_fall_back_opens_at_the_first_of_two_identical_hours() -> None:
    # New York, 3 November 2024: 01:00–02:00 happens twice (EDT, then EST).
    w = SendWindow(start="01:30", end="03:00")
    opens = w.next_open(utc(2024, 11, 3, 4, 0), NEW_YORK)  # 00:00 EDT
    assert opens == utc(2024, 11, 3, 5, 30)  # 01:30 EDT, the first one
    assert w.is_open(utc(2024, 11, 3, 6, 45), NEW_YORK)  # 01:45 EST, the second: still open
    assert not w.is_open(utc(2024, 11, 3, 8, 0), NEW_YORK)  # 03:00 EST


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        SendWindow(start="08:00", end="20:00").is_open(datetime(2024, 5, 6, 12), SAO_PAULO)


# CSV parsing --------------------------------------------------------------------------------


def test_csv_rows_are_checked_one_by_one_with_line_numbers() -> None:
    parsed = parse_csv(
        "Name;PHONE;city\n"
        "Ana;+55 11 98765-4321;SP\n"
        "\n"
        "Sem telefone;;RJ\n"
        'Bia;"not a phone";BH\n'
        "Ana again;5511987654321;SP\n"
        '"Carla\nSouza";+1 415 555 0123;SF\n'
        "Dan;+14155550124\n"
    )
    assert [(r.line, r.phone, r.name) for r in parsed.rows] == [
        (2, "+5511987654321", "Ana"),
        (7, "+14155550123", "Carla\nSouza"),
        (9, "+14155550124", "Dan"),
    ]
    assert [(e.line, e.reason) for e in parsed.errors] == [
        (4, "missing phone"),
        (5, "invalid phone number"),
        (6, "duplicate phone (same number as line 2)"),
    ]


def test_a_csv_without_a_phone_header_is_refused() -> None:
    with pytest.raises(CsvImportError, match="header"):
        parse_csv("5511987654321,Ana\n")


def test_a_csv_with_too_many_rows_is_refused() -> None:
    with pytest.raises(CsvImportError, match="more than 200000 rows"):
        parse_csv("phone\n" + "x\n" * (MAX_CSV_ROWS + 1))
