"""TOTP codes: which time steps a code is accepted for, told apart at a fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from engine.security import match_totp, new_totp_secret

# Mid-step, so ±1 step is unambiguous.
AT = datetime(2026, 3, 1, 12, 0, 15, tzinfo=UTC)
FIXED_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.mark.parametrize("offset", [0, -1, 1])
def test_a_code_within_one_step_of_drift_matches_its_own_step(offset: int) -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)

    step = match_totp(secret, totp.at(AT, counter_offset=offset), at=AT)

    assert step == totp.timecode(AT) + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_two_steps_away_is_refused(offset: int) -> None:
    # A fixed secret: a random one could, once in a million, give a code that collides
    # with an accepted step's.
    code = pyotp.TOTP(FIXED_SECRET).at(AT, counter_offset=offset)

    assert match_totp(FIXED_SECRET, code, at=AT) is None


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        "12a456",
        " 123456",
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic 123456: isdigit(), not ASCII
        "12345\u00b2",
    ],
)
def test_malformed_codes_are_refused(code: str) -> None:
    assert match_totp(new_totp_secret(), code, at=AT) is None
