"""Phone numbers in E.164, so that one person is one contact whatever form a channel uses."""

from __future__ import annotations

import phonenumbers

# Brazilian mobile numbers gained a leading 9 (2012–2016); WhatsApp still reports many
# accounts in the old 8-digit form. Mobile subscriber numbers start with 6–9, landlines 2–5.
_BR_OLD_MOBILE_LEN = 12  # 55 + 2-digit area code + 8 digits


def normalize_phone(raw: str) -> str | None:
    """Return the E.164 form of `raw` (digits with or without '+'), or None if it is no phone."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not 8 <= len(digits) <= 15:
        return None
    if digits.startswith("55") and len(digits) == _BR_OLD_MOBILE_LEN and digits[4] in "6789":
        digits = digits[:4] + "9" + digits[4:]
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
