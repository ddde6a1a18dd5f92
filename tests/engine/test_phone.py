"""Phone numbers: one E.164 form per person, whatever shape a channel reports."""

from __future__ import annotations

import pytest

from engine.phone import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Brazilian mobiles: the old 12-digit form gains its ninth digit.
        ("5511987654321", "+5511987654321"),
        ("551187654321", "+5511987654321"),
        ("552187654321", "+5521987654321"),
        ("556181234567", "+5561981234567"),
        ("551161234567", "+5511961234567"),
        ("+55 (11) 8765-4321", "+5511987654321"),
        ("+55 11 98765-4321", "+5511987654321"),
        ("  +55 11 98765-4321  ", "+5511987654321"),
        # Brazilian landlines (subscriber number starting 2–5) are left as they are.
        ("551132654321", "+551132654321"),
        ("5511 3265-4321", "+551132654321"),
        ("+55 11 5876-5432", "+551158765432"),
        ("552122223333", "+552122223333"),
        # Elsewhere: digits and punctuation, with or without '+'.
        ("15550783881", "+15550783881"),
        ("+1 (555) 078-3881", "+15550783881"),
        ("1-202-555-0143", "+12025550143"),
        ("+1.202.555.0143", "+12025550143"),
        ("+44 20 7946 0958", "+442079460958"),
        ("447700900123", "+447700900123"),
        ("+86 138 0013 8000", "+8613800138000"),
    ],
)
def test_numbers_normalise_to_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "+",
        "not a phone",
        "1234",  # too short
        "1234567",  # still too short
        "1234567890123456",  # 16 digits: longer than E.164 allows
        "55119876543210",  # a Brazilian mobile with a digit too many
        "+0123456789",  # no country code starts with 0
        "9999999999999",  # no such country
    ],
)
def test_junk_is_not_a_phone(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_old_and_new_brazilian_forms_are_one_person() -> None:
    forms = ["5511987654321", "551187654321", "+55 11 8765-4321", "+55 (11) 9 8765-4321"]
    assert {normalize_phone(f) for f in forms} == {"+5511987654321"}


def test_non_brazilian_twelve_digit_numbers_get_no_ninth_digit() -> None:
    # 12 digits starting with a mobile-looking digit, but country code 44, not 55.
    assert normalize_phone("447911123456") == "+447911123456"
