"""Value rules: turn our values into the forms the SCRIPT 2017071 schema accepts, or refuse them.

Pure. Every function takes the *field* (the element path as written in the message, e.g.
``Patient/HumanPatient/Name/FirstName``) so that a refusal names it. A refused value raises
:class:`ValueRefused` before any message text exists: we never send a message a partner rejects.

The schema facts (docs/ncpdp-2017071-schema-findings.md, and the 2017071 datatypes):

* ``an`` free text: the printable-ASCII pattern ``([!-~]|[ ])*[!-~]([!-~]|[ ])*`` — at least one
  visible character, spaces allowed, nothing outside U+0020..U+007E (no line breaks, no "ë").
  ``an1..N`` adds a maximum length N.
* ``n`` numbers: ``[0-9]+(\\.[0-9]+)?`` (no sign, no exponent), ``n1..N`` at most N characters.
* Telephone ``Number``: ``n1..10`` — digits only, at most 10; ``Extension`` ``n1..8`` apart.
* Dates: ``Date`` is ``xsd:date`` (YYYY-MM-DD), ``DateTime`` and ``SentTime`` are ``xsd:dateTime``
  (we write UTC with ``Z``).

Transliteration keeps the meaning for names and text ("Zoë" → "Zoe", "–" → "-", "≥" → ">="); it is
applied to the message only — our records keep the original.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal


class ValueRefused(ValueError):
    """A value the schema cannot carry. ``field`` is the element path it was meant for."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


#: Characters NFKD does not reduce to ASCII, with the spelling a reader expects.
_SPELLED = {
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L",
    "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th", "ı": "i",
    "‘": "'", "’": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "‹": "<", "›": ">", "«": '"', "»": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "…": "...", "•": "*", "·": ".",
    "≥": ">=", "≤": "<=", "≠": "!=", "±": "+/-", "×": "x", "÷": "/", "µ": "u", "μ": "u", "°": " deg ",
    "©": "(c)", "®": "(R)", "™": "(TM)", "€": "EUR", "£": "GBP", "½": "1/2", "¼": "1/4", "¾": "3/4",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}
_WHITESPACE = re.compile(r"[\t\r\n\f\v ]+")
_PRINTABLE = re.compile(r"[ -~]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*(\d{1,8})\s*$", re.IGNORECASE)


def ascii_text(value: str) -> str:
    """``value`` in printable ASCII: known letters spelled out, accents dropped, line breaks and
    tabs as single spaces, trimmed. Characters with no ASCII form are left in (the caller refuses)."""
    out = []
    for ch in str(value):
        if ch in _SPELLED:
            out.append(_SPELLED[ch])
            continue
        decomposed = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(base if base.isascii() else ch)
    return _WHITESPACE.sub(" ", "".join(out)).strip()


def text(field: str, value: object, max_length: int | None = None) -> str:
    """Schema ``an`` / ``an1..N``: printable ASCII, at most ``max_length``; "" when empty."""
    if value is None:
        return ""
    result = ascii_text(str(value))
    if not result:
        return ""
    if not _PRINTABLE.fullmatch(result):
        bad = next(ch for ch in result if not (" " <= ch <= "~"))
        raise ValueRefused(field, f"character {bad!r} (U+{ord(bad):04X}) has no printable-ASCII form")
    if max_length is not None and len(result) > max_length:
        raise ValueRefused(field, f"{len(result)} characters; the schema allows at most {max_length}")
    return result


def lossy_text(value: object, max_length: int) -> str:
    """Our own explanatory text (Status/Error Description): printable ASCII, characters without an
    ASCII form as "?", cut to ``max_length`` — an answer must never fail to be built."""
    result = "".join(ch if " " <= ch <= "~" else "?" for ch in ascii_text(str(value or "")))
    return result[:max_length].strip()


def required_text(field: str, value: object, max_length: int | None = None) -> str:
    result = text(field, value, max_length)
    if not result:
        raise ValueRefused(field, "required by the schema and empty")
    return result


def phone(field: str, value: str) -> tuple[str, str]:
    """Schema ``PhoneType``: (``Number`` 10 digits, ``Extension`` up to 8 digits or "").

    Accepts the forms people write ("617-555-1000", "(617) 555-1000", "+1 617 555 1000",
    "617.555.1000 x12"); a leading US country code 1 is dropped."""
    raw = ascii_text(value or "")
    if not raw:
        return "", ""
    extension = ""
    m = _EXTENSION.search(raw)
    if m:
        extension, raw = m.group(1), raw[: m.start()]
    digits = re.sub(r"[\s().\-/+]", "", raw)
    if not digits.isdigit():
        raise ValueRefused(f"{field}/Number", f"{value!r} is not a telephone number (digits only)")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise ValueRefused(f"{field}/Number", f"{value!r} has {len(digits)} digits; a 10-digit number is required")
    return digits, extension


def number(field: str, value: int | Decimal | None, max_length: int) -> str:
    """Schema ``n1..N``: digits with an optional decimal fraction, at most N characters."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueRefused(field, "a boolean is not a number")
    if isinstance(value, int):
        result = str(value)
    else:
        d = Decimal(value)
        if not d.is_finite():
            raise ValueRefused(field, f"{value} is not a finite number")
        result = format(d.normalize() if d == d.to_integral() else d, "f")
        if "." in result:
            result = result.rstrip("0").rstrip(".")
    if not _NUMBER.fullmatch(result):
        raise ValueRefused(field, f"{result!r} is not a non-negative number")
    if len(result) > max_length:
        raise ValueRefused(field, f"{result!r} is longer than the schema's {max_length} characters")
    return result


def identifier(field: str, value: object, max_length: int = 35) -> str:
    """An identifier (``an1..35`` unless said otherwise): printable ASCII without spaces changed."""
    return text(field, value, max_length)


def date_text(value: date | datetime) -> str:
    """``Date`` (YYYY-MM-DD) for a date, UTC ``DateTime`` for an aware datetime."""
    if isinstance(value, datetime):
        return datetime_text("DateTime", value)
    return value.isoformat()


def datetime_text(field: str, value: datetime) -> str:
    """``xsd:dateTime`` in UTC with milliseconds when present, e.g. 2025-03-04T15:16:17.250Z."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueRefused(field, "a date-time must be timezone-aware (it is sent as UTC)")
    utc = value.astimezone(UTC)
    out = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        out += f".{utc.microsecond // 1000:03d}"
    return out + "Z"


def code(field: str, value: str, allowed: dict[str, str] | frozenset[str] | tuple[str, ...]) -> str:
    """A code from the transaction's own code set (e.g. CancelRxResponse Denied ReasonCode)."""
    if value not in allowed:
        raise ValueRefused(field, f"{value!r} is not in this transaction's code set {sorted(allowed)}")
    return value


#: Quantity/QuantityUnitOfMeasure/Code (NCI Thesaurus codes of the NCPDP terminology subset) by the
#: dose form words we record; C38046 "unspecified" when none fits.
NCI_UNITS: tuple[tuple[str, str], ...] = (
    ("tablet", "C48542"), ("capsule", "C48480"), ("solution", "C28254"), ("suspension", "C28254"),
    ("syrup", "C28254"), ("liquid", "C28254"), ("injection", "C28254"), ("drops", "C28254"),
    ("cream", "C48155"), ("ointment", "C48155"), ("gel", "C48155"),
)
UNIT_UNSPECIFIED = "C38046"


def quantity_unit(dose_form: str) -> str:
    form = (dose_form or "").casefold()
    return next((unit for word, unit in NCI_UNITS if word in form), UNIT_UNSPECIFIED)
