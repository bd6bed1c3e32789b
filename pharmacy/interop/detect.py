"""Sniff the format of a clinical payload and dispatch it to the matching reader.

Pure: no Django. ``detect_format`` looks only at the first bytes (after a BOM and whitespace):
``MSH``/``FHS``/``BHS`` → HL7 v2, ``{`` → FHIR JSON, ``<`` → C-CDA XML.
"""
from __future__ import annotations

import re

from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord

__all__ = ["decode_unicode", "detect_format", "format_mismatch", "read_clinical", "sniff", "FORMATS"]

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


# What a payload is, in words, and where it goes (the endpoints of this service, docs/standards.md).
KINDS = {
    "hl7v2": ("HL7 v2 (ER7, pipe-delimited)", "POST it to /api/v1/hl7/ or send it over MLLP"),
    "hl7v2-xml": ("HL7 v2 in its XML encoding", "send the ER7 (pipe-delimited) form to /api/v1/hl7/"),
    "fhir": ("FHIR JSON", "POST it to /api/v1/fhir/"),
    "fhir-xml": ("FHIR XML", "send it as FHIR JSON to /api/v1/fhir/"),
    "ccda": ("a C-CDA / CDA document", "POST it to /api/v1/documents/"),
    "ncpdp": ("NCPDP SCRIPT XML", "POST it to /api/v1/ncpdp/"),
    "xml": ("XML that is not a CDA document", "only C-CDA documents are read at /api/v1/documents/"),
    "unknown": ("not HL7 v2, FHIR JSON or C-CDA XML", "check the file"),
}
_XML_ROOT = re.compile(rb"<(?![?!])(?:([A-Za-z_][\w.-]*):)?([A-Za-z_][\w.-]*)([^>]*)>", re.S)
_HL7_V2_XML_ROOT = re.compile(rb"^[A-Z][A-Z0-9]{2}_[A-Z0-9]{3}$|^ACK$")
_FHIR_NS = b"http://hl7.org/fhir"
_NCPDP_NS = b"http://www.ncpdp.org/schema/SCRIPT"


def sniff(data: bytes | str) -> str:
    """Finer than ``detect_format``: hl7v2 | hl7v2-xml | fhir | fhir-xml | ccda | ncpdp | xml | unknown."""
    fmt = detect_format(data)
    if fmt != "ccda":
        return fmt
    head = _head(data)
    body = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", head, flags=re.S)
    m = _XML_ROOT.search(body)
    if not m:
        return "xml"
    root, attrs = m.group(2), m.group(3)
    if root in (b"ClinicalDocument", b"section", b"component", b"entry", b"structuredBody"):
        return "ccda"
    if _NCPDP_NS in attrs or root == b"Message" and (b"ncpdp" in attrs.lower() or b"<Header>" in head
                                                     or b"<Body>" in head):
        return "ncpdp"
    if _FHIR_NS in attrs:
        return "fhir-xml"
    if _HL7_V2_XML_ROOT.match(root) and (b"urn:hl7-org:v2xml" in attrs or b"<MSH>" in head or b"<MSH " in head):
        return "hl7v2-xml"
    return "xml"


# The format each inbound channel takes.
CHANNEL_FORMATS = {"mllp": "hl7v2", "http_hl7": "hl7v2", "http_fhir": "fhir", "http_document": "ccda",
                   "pull": "fhir"}


def format_mismatch(channel: str, data: bytes | str) -> str:
    """"" when ``data`` is what ``channel`` takes; otherwise a plain sentence naming the format
    detected and where to send it (never accepted: an HL7 channel answers AR, HTTP 400)."""
    expected = CHANNEL_FORMATS.get(channel)
    if not expected or not _head(data):
        return ""
    kind = sniff(data)
    if kind == expected:
        return ""
    label, where = KINDS[kind]
    want = KINDS[expected][0]
    return f"wrong format for this endpoint: this is {label}, not {want}; {where}"


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
        kind = sniff(data)
        if kind in ("ncpdp", "hl7v2-xml", "fhir-xml"):
            label, where = KINDS[kind]
            raise ClinicalParseError(f"this is {label}, not a clinical document the readers take: {where}")
        from pharmacy.interop.ccda import read_ccda

        return fmt, [read_ccda(data)]
    if not _head(data):
        raise ClinicalParseError("empty input")
    raise ClinicalParseError(
        "unrecognised format: expected HL7 v2 (starting MSH, FHS or BHS), FHIR JSON ({) or C-CDA XML (<)"
    )
