"""Sniff the format of a clinical payload and dispatch it to the matching reader.

Pure: no Django. ``detect_format`` looks only at the first bytes (after a BOM and whitespace):
``MSH``/``FHS``/``BHS`` → HL7 v2, ``{`` → FHIR JSON, ``<`` → C-CDA XML.
"""
from __future__ import annotations

from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord

__all__ = ["detect_format", "read_clinical", "FORMATS"]

FORMATS = ("hl7v2", "fhir", "ccda", "unknown")

_BOMS = (b"\xef\xbb\xbf",)


def _head(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    head = bytes(data[:4096])
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            head = head.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return b""
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
