"""Validation of identifiers that forms and services both need."""
from __future__ import annotations

import re

# GB 32100-2015: 统一社会信用代码. The alphabet leaves out I, O, S, V and Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")

MOBILE_OR_LANDLINE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?|\d{7,8})$")


def credit_code_check_char(first17: str) -> str:
    """Return the check character for the first 17 characters of a credit code."""
    total = sum(
        CREDIT_CODE_ALPHABET.index(ch) * weight
        for ch, weight in zip(first17, CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(value: str) -> str:
    """Upper-case and strip a credit code as typed (full-width spaces included)."""
    return value.strip().replace(" ", "").replace("\u3000", "").upper()


def credit_code_problem(code: str) -> str | None:
    """Return why ``code`` is not a valid credit code ("length", "chars", "check") or None."""
    if len(code) != 18:
        return "length"
    if not _CREDIT_CODE_SHAPE.match(code):
        return "chars"
    if credit_code_check_char(code[:17]) != code[17]:
        return "check"
    return None


def is_valid_phone(value: str) -> bool:
    """Mainland mobile (11 digits) or landline with optional area code and extension."""
    return bool(MOBILE_OR_LANDLINE.match(value.replace(" ", "")))
