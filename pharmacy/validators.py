"""Identifier validators. Each raises ValidationError with a code and a message naming the rule.

Pure helpers (``npi_is_valid`` …) are used by the interop codecs and tests; the ``validate_*``
functions are Django field validators.
"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError


def luhn_checksum_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def npi_is_valid(npi: str) -> bool:
    # NPI: 10 digits; Luhn check digit computed over the NPI prefixed with 80840
    # (CMS, "Requirements for NPI Check Digit", ISO standard card issuer prefix).
    return bool(re.fullmatch(r"\d{10}", npi or "")) and luhn_checksum_ok("80840" + npi)


def validate_npi(value: str) -> None:
    if not re.fullmatch(r"\d{10}", value or ""):
        raise ValidationError("NPI must be exactly 10 digits.", code="npi_format")
    if not npi_is_valid(value):
        raise ValidationError("NPI check digit is wrong (Luhn with prefix 80840).", code="npi_checksum")


# DEA registrant first letters (DEA Diversion Control: A/B/F/G practitioners, M mid-level,
# P/R distributors, X for DATA-waived prescribers, C … L etc.).
DEA_FIRST_LETTERS = set("ABCDEFGHJKLMPRSTUX")


def dea_is_valid(dea: str, last_name: str | None = None) -> bool:
    try:
        validate_dea_number(dea, last_name=last_name)
    except ValidationError:
        return False
    return True


def validate_dea_number(value: str, last_name: str | None = None) -> None:
    """DEA number: 2 letters + 7 digits; check digit = last digit of (d1+d3+d5) + 2×(d2+d4+d6).

    The second letter is the first letter of the registrant's last name (or 9 for some
    business registrants).
    """
    dea = (value or "").strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z9]\d{7}", dea):
        raise ValidationError("DEA number must be 2 letters followed by 7 digits.", code="dea_format")
    if dea[0] not in DEA_FIRST_LETTERS:
        raise ValidationError(f"DEA number cannot start with {dea[0]!r}.", code="dea_registrant_type")
    d = [int(c) for c in dea[2:]]
    check = ((d[0] + d[2] + d[4]) + 2 * (d[1] + d[3] + d[5])) % 10
    if check != d[6]:
        raise ValidationError("DEA number check digit is wrong.", code="dea_checksum")
    if last_name and dea[1] != "9" and dea[1] != last_name.strip()[:1].upper():
        raise ValidationError(
            "DEA number's second letter must match the first letter of the prescriber's last name.",
            code="dea_last_name",
        )


def validate_ncpdp_id(value: str) -> None:
    # NCPDP Provider ID (formerly NABP number): 7 digits.
    if not re.fullmatch(r"\d{7}", value or ""):
        raise ValidationError("NCPDP provider ID must be exactly 7 digits.", code="ncpdp_id_format")


def validate_bin(value: str) -> None:
    # BIN (IIN) on pharmacy claims: 6 digits (NCPDP Telecommunication D.0 field 101-A1).
    if not re.fullmatch(r"\d{6}", value or ""):
        raise ValidationError("BIN must be exactly 6 digits.", code="bin_format")


_NDC_FORMS = {
    (4, 4, 2): lambda a, b, c: "0" + a + b + c,
    (5, 3, 2): lambda a, b, c: a + "0" + b + c,
    (5, 4, 1): lambda a, b, c: a + b + "0" + c,
    (5, 4, 2): lambda a, b, c: a + b + c,
}


def normalize_ndc(value: str) -> str:
    """Return the 11-digit (5-4-2) NDC for a hyphenated 4-4-2, 5-3-2, 5-4-1 or 5-4-2 code.

    An unhyphenated 11-digit code is already normalised; an unhyphenated 10-digit code is
    ambiguous (which segment to pad?) and is refused. FDA NDC Directory / CMS 11-digit format.
    """
    raw = (value or "").strip().replace(" ", "")
    if re.fullmatch(r"\d{11}", raw):
        return raw
    parts = raw.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        shape = tuple(len(p) for p in parts)
        if shape in _NDC_FORMS:
            return _NDC_FORMS[shape](*parts)
    if re.fullmatch(r"\d{10}", raw):
        raise ValidationError(
            "A 10-digit NDC without hyphens is ambiguous; write it as 4-4-2, 5-3-2 or 5-4-1.",
            code="ndc_ambiguous",
        )
    raise ValidationError(
        "NDC must be 11 digits or hyphenated as 4-4-2, 5-3-2, 5-4-1 or 5-4-2.", code="ndc_format"
    )


def validate_ndc11(value: str) -> None:
    if not re.fullmatch(r"\d{11}", value or ""):
        raise ValidationError("NDC must be stored as 11 digits (5-4-2).", code="ndc_format")


def icd10cm_is_valid(code: str) -> bool:
    import simple_icd_10_cm as icd  # shipped ICD-10-CM code set (CDC/CMS release)

    code = (code or "").strip().upper()
    return bool(code) and icd.is_valid_item(code) and not icd.is_chapter(code) and not icd.is_block(code)


def normalize_icd10cm(value: str) -> str:
    code = (value or "").strip().upper().replace(" ", "")
    if len(code) > 3 and "." not in code:
        code = code[:3] + "." + code[3:]
    return code


def validate_icd10cm(value: str) -> None:
    if not icd10cm_is_valid(normalize_icd10cm(value)):
        raise ValidationError(f"{value!r} is not an ICD-10-CM code.", code="icd10cm_unknown")


def icd10cm_description(code: str) -> str:
    import simple_icd_10_cm as icd

    try:
        return icd.get_description(normalize_icd10cm(code))
    except ValueError:
        return ""


def loinc_is_valid(code: str) -> bool:
    """LOINC codes are digits, a hyphen and a mod-10 check digit (LOINC Users' Guide, appendix)."""
    match = re.fullmatch(r"(\d{1,7})-(\d)", code or "")
    if not match:
        return False
    body, check = match.groups()
    digits = body
    # Mod 10: double every other digit starting from the rightmost of the body.
    odd = digits[::-1][0::2]
    even = digits[::-1][1::2]
    doubled = "".join(str(int(c) * 2) for c in odd[::-1])
    total = sum(int(c) for c in doubled) + sum(int(c) for c in even)
    return (10 - total % 10) % 10 == int(check)


def validate_loinc(value: str) -> None:
    if not loinc_is_valid(value):
        raise ValidationError(f"{value!r} is not a LOINC code (digits-check digit).", code="loinc_format")


def validate_rxcui(value: str) -> None:
    if value and not re.fullmatch(r"\d{1,8}", value):
        raise ValidationError("RxCUI must be digits.", code="rxcui_format")


def normalize_phone(value: str) -> str:
    """North American numbers are stored as NNN-NNN-NNNN so a search or an SMS sender
    (+1 617 555 0100, (617) 555-0100 …) finds them; other numbers are kept as written."""
    raw = (value or "").strip()
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return raw
