"""Sniff the format of a clinical payload and dispatch it to the matching reader.

Pure: no Django. ``detect_format`` looks only at the first bytes (after a BOM and whitespace):
``MSH``/``FHS``/``BHS`` → HL7 v2, ``{`` → FHIR JSON, ``<`` → C-CDA XML.
"""
from __future__ import annotations

from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord

__all__ = ["decode_unicode", "detect_format", "read_clinical", "FORMATS"]

FORMATS = ("hl7v2", "fhir", "ccda", "unknown")

_BOMS = (b"\xef\xbb\xbf",)


# Byte order marks (Unicode §23.8) and, for JSON without one, the RFC 4627 §3 zero-byte patterns of
# the first two characters (JSON text starts with two ASCII characters).
_UNICODE_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                 (b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_ZERO_PATTERNS = ((b"\x00\x00\x00", 0, "utf-32-be"), (b"\x00\x00\x00", 1, "utf-32-le"))


def unicode_encoding(data: bytes) -> tuple[str, int]:
    """(encoding, BOM length) when ``data`` starts with a BOM or is zero-padded UTF-16/32; ("", 0)."""
    head = bytes(data[:4])
    for bom, name in _UNICODE_BOMS:
        if head.startswith(bom):
            return name, len(bom)
    if len(head) == 4:
        if head[:3] == b"\x00\x00\x00" and head[3]:
            return "utf-32-be", 0
        if head[0] and head[1:] == b"\x00\x00\x00":
            return "utf-32-le", 0
        if head[0] == 0 and head[1] and head[2] == 0 and head[3]:
            return "utf-16-be", 0
        if head[0] and head[1] == 0 and head[2] and head[3] == 0:
            return "utf-16-le", 0
    return "", 0


def decode_unicode(data: bytes) -> str | None:
    """Text of a payload in UTF-8 with a BOM, or UTF-16/UTF-32 (with a BOM or zero-padded); None if
    it is none of these (plain UTF-8 and other encodings are for the caller). Raises UnicodeError
    for bytes that do not decode in the encoding they declare."""
    encoding, skip = unicode_encoding(data)
    if not encoding:
        return None
    return bytes(data[skip:]).decode(encoding)


def _head(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    head = bytes(data[:4096])
    encoding, skip = unicode_encoding(head)
    if encoding:
        cut = len(head) - (len(head) - skip) % (4 if "32" in encoding else 2 if "16" in encoding else 1)
        head = head[skip:cut].decode(encoding, errors="ignore").encode("utf-8")
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
    return head.lstrip(b" \t\r\n\x0b\x0c\x00")


def detect_format(data: bytes) -> str:
    """"hl7v2" | "fhir" | "ccda" | "unknown" from the first meaningful bytes."""
    head = _head(data)
    if head[:3] in (b"MSH", b"FHS", b"BHS"):
        return "hl7v2"
    if head[:1] == b"{":
        return "fhir"
    if head[:1] == b"<":
        return "ccda"
    return "unknown"


def read_clinical(data: bytes) -> tuple[str, list[ClinicalRecord]]:
    """Detect the format and read every record in ``data``.

    Returns ``(format, records)``; raises ``ClinicalParseError`` for unreadable input (including an
    unrecognised format).
    """
    fmt = detect_format(data)
    if fmt == "hl7v2":
        try:
            from pharmacy.interop.hl7v2 import read_hl7v2
        except ImportError as exc:
            raise ClinicalParseError("HL7 v2 reader unavailable") from exc
        return fmt, list(read_hl7v2(data))
    if fmt == "fhir":
        from pharmacy.interop.fhir import read_fhir

        return fmt, [read_fhir(data)]
    if fmt == "ccda":
        from pharmacy.interop.ccda import read_ccda

        return fmt, [read_ccda(data)]
    if not _head(data):
        raise ClinicalParseError("empty input")
    raise ClinicalParseError(
        "unrecognised format: expected HL7 v2 (starting MSH, FHS or BHS), FHIR JSON ({) or C-CDA XML (<)"
    )
