"""HL7 v2.x reader: messages → ``ClinicalRecord`` (patient, encounter, medications, allergies,
problems, lab results), plus ``build_ack`` and a cheap ``message_header`` for deduplication.

Pure: no Django, no ORM. A small tolerant parser of our own is used rather than python-hl7 so that
what real senders do is accepted and reported instead of failing half-way:

* segment separators CR, LF, CRLF or a mix; a UTF-8 BOM; MLLP framing bytes; no final terminator;
* any encoding characters MSH-1/MSH-2 declare (``MSH$%~\\&$…``);
* ``""`` (HL7 explicit null) read as empty; leading/trailing blanks trimmed;
* bytes decoded as UTF-8, falling back to cp1252 (with a warning);
* escape sequences \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ \\H\\ \\N\\ \\.br\\ \\.sp\\ \\Xhh..\\
  (unknown ones kept as written);
* batch/file envelopes (FHS/BHS/BTS/FTS) unwrapped; a misplaced envelope segment is skipped with a
  warning as long as the messages themselves are readable.

Refused with ``ClinicalParseError`` (the message names the field): no MSH at all, MSH-1 missing or
alphanumeric, MSH-2 empty / fewer than 4 / more than 5 / duplicated encoding characters, MSH-9
message code missing.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from pharmacy.interop.clinical import (
    CVX,
    ICD10CM,
    LOCAL,
    LOINC,
    NDC,
    RXNORM,
    SNOMED,
    AllergyData,
    ClinicalParseError,
    ClinicalRecord,
    EncounterData,
    Identifier,
    LabResultData,
    MedicationData,
    PatientData,
    ProblemData,
    finish_allergies,
    name_part,
    no_known_scope,
    placeholder,
)
from pharmacy.interop.sig import (
    REVIEW_THRESHOLD,
    ParsedSig,
    normalize_frequency,
    normalize_route,
    parse_medication_list,
    parse_sig,
)

__all__ = [
    "build_ack",
    "message_header",
    "parse_message",
    "read_hl7v2",
    "split_messages",
]

ICD9 = "icd9"
ENVELOPE_SEGMENTS = {"FHS", "BHS", "BTS", "FTS"}
ACK_CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}
_ERROR_CODES = {  # HL7 table 0357 message error condition codes
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
    "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id",
    "203": "Unsupported version id", "204": "Unknown key identifier", "205": "Duplicate key identifier",
    "206": "Application record locked", "207": "Application internal error",
}

# ---------------------------------------------------------------------------------------------
# Decoding and splitting
# ---------------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> tuple[str, list[str]]:
    """Text of the payload and any warning about how it was decoded."""
    warnings: list[str] = []
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
            warnings.append("input is not valid UTF-8; decoded as cp1252")
    elif isinstance(data, str):
        text = data
    else:
        raise ClinicalParseError(f"HL7 v2 input must be bytes or str, not {type(data).__name__}")
    text = text.lstrip("\ufeff")
    # MLLP framing: <VT> message <FS><CR>
    text = text.replace("\x0b", "").replace("\x1c", "")
    return text, warnings


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_ESCAPED_CR_ARTEFACT = re.compile(r"(?:\\+r)+$")  # a literal "\r" typed into a file: "…VOMITING\\r"


@dataclass
class _RawMessage:
    segments: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def separator(self) -> str:
        return _field_separator(self.segments[0])

    @property
    def text(self) -> str:
        return "\r".join(self.segments) + "\r"


def _field_separator(line: str) -> str:
    return line[3:4]


def _is_segment_line(line: str, separator: str) -> bool:
    return bool(_SEGMENT_ID.fullmatch(line[:3])) and (len(line) == 3 or line[3:4] == separator)


def _split(data: bytes | str) -> tuple[list[_RawMessage], list[str]]:
    """Messages (segments normalised, envelopes removed) and warnings that apply to all."""
    text, global_warnings = _decode(data)
    messages: list[_RawMessage] = []
    current: _RawMessage | None = None
    pending: list[str] = []  # warnings for the next message
    orphans: list[str] = []  # segment ids seen outside any message
    envelope_seen: list[str] = []
    batch_open = False
    batch_start = 0
    file_batches = 0
    separator: str | None = None

    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        line = line.strip(" \t\x00")
        if not line:
            continue
        seg_id = line[:3]
        if seg_id == "MSH":
            current = _RawMessage([line], pending)
            pending = []
            separator = None  # MSH-1 of this message, read at its first other segment
            messages.append(current)
            continue
        if seg_id in ENVELOPE_SEGMENTS and (len(line) == 3 or not line[3].isalnum()):
            envelope_seen.append(seg_id)
            if seg_id in {"FHS", "BHS"} and current is not None:
                current.warnings.append(
                    f"line {number}: {seg_id} inside a message (broken envelope); ignored"
                )
            if seg_id == "BHS" and not batch_open:
                batch_open, batch_start = True, len(messages)
                file_batches += 1
            elif seg_id == "BTS":
                count = _envelope_count(line)
                found = len(messages) - batch_start
                if count is not None and count != found and current is not None:
                    current.warnings.append(f"BTS-1 says {count} message(s) in the batch, found {found}")
                batch_open = False
            elif seg_id == "FTS":
                count = _envelope_count(line)
                if count is not None and count != file_batches and current is not None:
                    current.warnings.append(f"FTS-1 says {count} batch(es) in the file, found {file_batches}")
            if seg_id in {"BTS", "FTS"}:
                current = None
            continue
        if current is None:
            if _SEGMENT_ID.fullmatch(seg_id):
                orphans.append(seg_id)
            continue
        if separator is None:
            separator = current.separator
        if _is_segment_line(line, separator):
            cleaned = _ESCAPED_CR_ARTEFACT.sub("", line) if line[-1] == "r" else line
            if cleaned != line:
                current.warnings.append(f"{seg_id} (line {number}): literal '\\r' text at the end removed")
            current.segments.append(cleaned)
        else:
            # A raw line break inside a field (e.g. a free-text OBX-5): keep it as \.br\.
            escape = current.segments[0][6:7] if len(current.segments[0]) > 6 else "\\"
            escape = escape if escape and not escape.isalnum() else "\\"
            current.segments[-1] += f"{escape}.br{escape}{line}"
            current.warnings.append(f"line {number} is not a segment; joined to the previous segment")

    if not messages:
        if envelope_seen or orphans:
            found = ", ".join(dict.fromkeys(envelope_seen + orphans))
            raise ClinicalParseError(
                f"no MSH segment: the batch/file envelope holds segments ({found}) but no message header"
            )
        raise ClinicalParseError("no MSH segment found: input is not an HL7 v2 message")
    if orphans:
        messages[0].warnings.append(
            f"segments outside any message ignored: {', '.join(dict.fromkeys(orphans))}"
        )
    return messages, global_warnings


def _envelope_count(line: str) -> int | None:
    parts = line.split(line[3]) if len(line) > 3 else []
    try:
        return int(parts[1]) if len(parts) > 1 and parts[1].strip() else None
    except ValueError:
        return None


def split_messages(data: bytes | str) -> list[str]:
    """Each MSH-headed message as CR-separated text (envelopes removed, separators normalised)."""
    messages, _ = _split(data)
    return [m.text for m in messages]


# ---------------------------------------------------------------------------------------------
# Encoding characters, segments, escapes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


STANDARD = _Encoding()


def _encoding_from_msh(line: str) -> tuple[_Encoding, list[str]]:
    """Validate MSH-1 / MSH-2 (ClinicalParseError naming the field) and return the encoding."""
    warnings: list[str] = []
    separator = line[3:4]
    if not separator or separator in "\r\n":
        raise ClinicalParseError("MSH-1: field separator missing (nothing after 'MSH')")
    if separator.isalnum() or separator.isspace():
        raise ClinicalParseError(
            f"MSH-1: field separator {separator!r} is not valid (letter, digit or space)"
        )
    chars = line[4:].split(separator, 1)[0]
    shown = repr(chars)
    if not chars:
        raise ClinicalParseError("MSH-2: encoding characters missing (MSH-2 is empty)")
    if any(c.isalnum() or c.isspace() for c in chars):
        raise ClinicalParseError(f"MSH-2: encoding characters {shown} contain letters, digits or spaces")
    if len(chars) < 4:
        raise ClinicalParseError(
            f"MSH-2: encoding characters {shown} incomplete: {len(chars)} given, 4 required "
            "(component, repetition, escape, subcomponent)"
        )
    if len(chars) == 5 and chars[2] == chars[3] and len(set(chars)) == 4 and separator not in chars:
        # "^~\\&": the escape character doubled by a sender that escaped its own source text.
        fixed = chars[:3] + chars[4]
        warnings.append(
            f"MSH-2: encoding characters {shown} have a doubled escape character; read as {fixed!r}"
        )
        chars = fixed
    if len(set(chars)) != len(chars) or separator in chars:
        raise ClinicalParseError(f"MSH-2: encoding characters {shown} contain duplicate characters")
    if len(chars) > 5:
        raise ClinicalParseError(
            f"MSH-2: encoding characters {shown}: too many ({len(chars)}; 4 expected, or 5 with "
            "the truncation character)"
        )
    enc = _Encoding(separator, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else "")
    return enc, warnings


def _unescape(value: str, enc: _Encoding) -> str:
    esc = enc.escape
    if esc not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != esc:
            out.append(ch)
            i += 1
            continue
        j = value.find(esc, i + 1)
        if j == -1:
            out.append(value[i:])
            break
        replacement = _escape_sequence(value[i + 1 : j], enc)
        out.append(value[i : j + 1] if replacement is None else replacement)
        i = j + 1
    return "".join(out)


def _escape_sequence(seq: str, enc: _Encoding) -> str | None:
    simple = {"F": enc.field, "S": enc.component, "T": enc.subcomponent, "R": enc.repetition,
              "E": enc.escape, "H": "", "N": ""}
    if seq in simple:
        return simple[seq]
    if seq == "P" and enc.truncation:
        return enc.truncation
    if seq == ".br" or seq == ".ce":
        return "\n"
    m = re.fullmatch(r"\.(sp|sk|in|ti)\s*([+-]?\d*)", seq)
    if m:
        count = int(m.group(2)) if m.group(2).lstrip("+-").isdigit() else 1
        if m.group(1) == "sp":  # \.sp n\: n line breaks
            return "\n" * max(count, 1)
        return " " * max(count, 0) if m.group(1) == "sk" else ""  # \.sk n\: skip n spaces
    if seq in {".fi", ".nf"}:
        return ""
    if seq[:1] == "X" and len(seq) > 1 and len(seq) % 2 == 1 and re.fullmatch(r"[0-9A-Fa-f]+", seq[1:]):
        raw = bytes.fromhex(seq[1:])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("cp1252", errors="replace")
    if seq[:1] in {"C", "M"} and re.fullmatch(r"[0-9A-Fa-f]+", seq[1:] or "x"):
        return ""  # character-set switch: the text itself is already decoded
    return None


def _escape(value: str, enc: _Encoding) -> str:
    """Text → HL7 field content (used for ACK error text)."""
    out = value.replace(enc.escape, f"{enc.escape}E{enc.escape}")
    for char, code in ((enc.field, "F"), (enc.component, "S"), (enc.repetition, "R"),
                       (enc.subcomponent, "T")):
        out = out.replace(char, f"{enc.escape}{code}{enc.escape}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{enc.escape}.br{enc.escape}")


def _clean(value: str) -> str:
    value = value.strip()
    return "" if value == '""' else value


def _value(raw: str, enc: _Encoding) -> str:
    """One subcomponent's text: trimmed, HL7 null ``""`` read as empty, escapes resolved."""
    value = raw.strip()
    if value == '""':
        return ""
    if enc.escape in value:
        value = _clean(_unescape(value, enc))
    return value


class _Rep:
    """One repetition of a field: its components split once, on first use."""

    __slots__ = ("raw", "enc", "_comps")

    def __init__(self, raw: str, enc: _Encoding) -> None:
        self.raw = raw
        self.enc = enc
        self._comps: list[str] | None = None

    def comps(self) -> list[str]:
        comps = self._comps
        if comps is None:
            comps = self._comps = self.raw.split(self.enc.component)
        return comps

    def get(self, comp: int = 1, sub: int = 1) -> str:
        """Unescaped value of component ``comp`` / subcomponent ``sub`` (1-based); "" if absent."""
        comps = self._comps if self._comps is not None else self.comps()
        if comp > len(comps):
            return ""
        part = comps[comp - 1]
        if self.enc.subcomponent in part:
            subs = part.split(self.enc.subcomponent)
            if sub > len(subs):
                return ""
            part = subs[sub - 1]
        elif sub > 1:
            return ""
        return _value(part, self.enc)

    def text(self, comp: int = 1) -> str:
        """A whole component with its subcomponents joined by spaces ("1000&Hospital Lane")."""
        comps = self.comps()
        if comp > len(comps):
            return ""
        subs = [_value(s, self.enc) for s in comps[comp - 1].split(self.enc.subcomponent)]
        return " ".join(s for s in subs if s)

    def whole(self) -> str:
        """The repetition as one text (free-text types): separators kept, escapes resolved."""
        return _value(self.raw, self.enc)

    def empty(self) -> bool:
        raw, enc = self.raw, self.enc
        if enc.component not in raw and enc.subcomponent not in raw:
            return not _clean(raw)
        return not any(_clean(s) for c in self.comps() for s in c.split(enc.subcomponent))


class _Segment:
    """One segment: fields split once, on first use; each field's repetitions read once."""

    __slots__ = ("id", "enc", "_line", "_fields", "_reps")

    def __init__(self, id: str, fields: list[str] | None, enc: _Encoding, line: str = "") -> None:
        self.id = id
        self.enc = enc
        self._line = line
        self._fields = fields  # fields[n] is field n in HL7 numbering (fields[0] = segment id)
        self._reps: dict[int, list[_Rep]] | None = None

    @classmethod
    def parse(cls, line: str, enc: _Encoding) -> _Segment:
        if line[:3] == "MSH":
            return cls("MSH", None, enc, line)
        return cls(line.partition(enc.field)[0], None, enc, line)

    @property
    def fields(self) -> list[str]:
        fields = self._fields
        if fields is None:
            line, sep = self._line, self.enc.field
            if self.id == "MSH":
                fields = ["MSH", sep, *line[4:].split(sep)]
            else:
                fields = line.split(sep)
            self._fields = fields
        return fields

    def release(self) -> None:
        """Forget the split fields (read again on demand): a long message's segments are read once."""
        if self._line:
            self._fields = None
        self._reps = None

    def raw(self, n: int) -> str:
        fields = self.fields
        return fields[n] if 0 <= n < len(fields) else ""

    def reps(self, n: int) -> list[_Rep]:
        cache = self._reps
        if cache is None:
            cache = self._reps = {}
        reps = cache.get(n)
        if reps is None:
            raw, enc = self.raw(n), self.enc
            if self.id == "MSH" and n <= 2:
                reps = [_Rep(raw, enc)] if raw else []
            elif enc.repetition in raw:
                reps = [r for r in (_Rep(part, enc) for part in raw.split(enc.repetition)) if not r.empty()]
            else:
                rep = _Rep(raw, enc)
                reps = [] if rep.empty() else [rep]
            cache[n] = reps
        return reps

    def rep(self, n: int, index: int = 0) -> _Rep:
        reps = self.reps(n)
        return reps[index] if index < len(reps) else _Rep("", self.enc)

    def get(self, n: int, comp: int = 1, sub: int = 1, rep: int = 0) -> str:
        enc = self.enc
        if rep == 0 and sub == 1 and (n > 2 or self.id != "MSH"):
            fields = self._fields if self._fields is not None else self.fields
            raw = fields[n] if 0 <= n < len(fields) else ""
            if enc.component not in raw and enc.repetition not in raw and enc.subcomponent not in raw:
                # A plain field (most are): the one repetition's one component, read directly.
                return "" if comp > 1 else _value(raw, enc)
        reps = self.reps(n)
        if rep >= len(reps):
            return ""
        return reps[rep].get(comp, sub)


# ---------------------------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------------------------

_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?\s*([+-]\d{4})?"
)


def _parse_dtm(value: str) -> datetime | date | None:
    """HL7 DTM/TS → date (day precision) or datetime; None if empty or invalid."""
    value = value.strip()
    m = _DTM.fullmatch(value)
    if not m or m.group(3) is None:
        return None
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        if m.group(4) is None:
            return date(year, month, day)
        hour, minute, second = int(m.group(4)), int(m.group(5) or 0), int(m.group(6) or 0)
        micro = int((m.group(7) or "0").ljust(6, "0")[:6])
        tz = None
        if m.group(8):
            sign = 1 if m.group(8)[0] == "+" else -1
            hh, mm = int(m.group(8)[1:3]), int(m.group(8)[3:5])
            if hh > 23 or mm > 59:
                return None
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


def _as_date(value: datetime | date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def _as_datetime(value: datetime | date | None) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    return datetime(value.year, value.month, value.day)


def _int(value: str) -> int | None:
    try:
        return int(float(value)) if value.strip() else None
    except ValueError:
        return None


_SYSTEMS = {
    RXNORM: {"RXN", "RXNORM", "2.16.840.1.113883.6.88"},
    NDC: {"NDC", "N", "ND", "2.16.840.1.113883.6.69"},
    SNOMED: {"SCT", "SNM", "SNM3", "SNOMED", "SNOMEDCT", "SNOMED-CT", "SNOMED CT", "2.16.840.1.113883.6.96"},
    LOINC: {"LN", "LNC", "LOINC", "2.16.840.1.113883.6.1"},
    ICD10CM: {"I10", "I10C", "ICD10", "ICD10CM", "ICD-10", "ICD-10-CM", "ICD10-CM", "2.16.840.1.113883.6.90"},
    ICD9: {"I9", "I9C", "I9CM", "ICD9", "ICD9CM", "ICD-9", "ICD-9-CM", "2.16.840.1.113883.6.103"},
    CVX: {"CVX", "2.16.840.1.113883.12.292"},
}
_SYSTEM_BY_NAME = {alias: name for name, aliases in _SYSTEMS.items() for alias in aliases}


def _code_system(system: str, code: str) -> str:
    """HL7 table 0396 name → our code-system name; any other system with a code → local."""
    name = _SYSTEM_BY_NAME.get(system.strip().upper())
    if name:
        return name
    return LOCAL if code else ""


@dataclass
class _Coding:
    code: str = ""
    text: str = ""
    system: str = ""  # our name (rxnorm, ndc, …)
    original_text: str = ""


def _coding(rep: _Rep, default_system: str = "") -> _Coding:
    """CE/CWE: primary (1-3) or alternate (4-6) coding, preferring a standard system; CWE.9 text."""
    primary = _Coding(rep.get(1), rep.get(2), _code_system(rep.get(3) or default_system, rep.get(1)))
    alternate = _Coding(rep.get(4), rep.get(5), _code_system(rep.get(6), rep.get(4)))
    chosen = primary
    if alternate.code and primary.system in {LOCAL, ""} and alternate.system not in {LOCAL, ""}:
        chosen = alternate
    chosen.text = chosen.text or primary.text or alternate.text
    chosen.original_text = rep.get(9)
    return chosen


def _unit(rep: _Rep) -> str:
    """Units (CE): a UCUM/ISO code as sent, otherwise the text ("BG^Bag" → Bag), else the code."""
    code, text, system = rep.get(1), rep.get(2), rep.get(3).upper()
    numeric = code.replace(".", "").isdigit()
    if code and not numeric and (system in {"UCUM", "ISO+", "ANS+", "ISO", "ISO2000"} or not text):
        return code
    return text or code


def _person_name(rep: _Rep) -> str:
    """XCN/XPN → "Given Family" (XCN: 1 id, 2 family, 3 given)."""
    family, given = name_part(rep.get(2)), name_part(rep.get(3))
    name = " ".join(p for p in (given, family) if p)
    return name or name_part(rep.get(1))


# ---------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------


def _lines(text: str):
    """The lines of ``text`` one by one (CR, LF or CRLF), without splitting all of it first."""
    start = 0
    for match in _LINE_BREAK.finditer(text):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def _first_msh_line(text: str) -> str:
    for line in _lines(text):
        line = line.strip(" \t\x00")
        if line.startswith("MSH"):
            return line
    raise ClinicalParseError("no MSH segment found: input is not an HL7 v2 message")


def _hd(rep: _Rep) -> str:
    """HD (hierarchic designator): namespace id, else universal id."""
    return rep.get(1) or rep.get(2)


def _pair(app: str, facility: str) -> str:
    return f"{app}^{facility}" if app or facility else ""


def _header(msh: _Segment) -> dict:
    code, trigger = msh.get(9, 1), msh.get(9, 2)
    app, facility = _hd(msh.rep(3)), _hd(msh.rep(4))
    return {
        "type": f"{code}^{trigger}" if trigger else code,
        "structure": msh.get(9, 3),
        "control_id": msh.get(10),
        "sender": _pair(app, facility),
        "receiver": _pair(_hd(msh.rep(5)), _hd(msh.rep(6))),
        "version": msh.get(12),
        "processing_id": msh.get(11),
        "sent_at": _as_datetime(_parse_dtm(msh.get(7))),
    }


def message_header(text: bytes | str) -> dict:
    """MSH fields for deduplication, without reading the rest of the message.

    Keys: type ("ADT^A03"), structure, control_id, sender ("MSH-3^MSH-4"), receiver, version,
    processing_id, sent_at (datetime or None). Raises ClinicalParseError for a missing/malformed MSH.
    """
    decoded, _ = _decode(text)
    line = _first_msh_line(decoded)
    enc, _ = _encoding_from_msh(line)
    return _header(_Segment.parse(line, enc))


# ---------------------------------------------------------------------------------------------
# Message → ClinicalRecord
# ---------------------------------------------------------------------------------------------


def read_hl7v2(
    data: bytes | str, *, known_drugs: Mapping[str, str] | None = None
) -> list[ClinicalRecord]:
    """One ClinicalRecord per MSH-headed message in ``data`` (batches unwrapped).

    ``known_drugs`` (synonym lowercased → canonical name) helps read free-text medication lines.
    Raises ClinicalParseError naming the fault when a message header cannot be read.
    """
    messages, global_warnings = _split(data)
    records: list[ClinicalRecord] = []
    for index, raw in enumerate(messages, start=1):
        try:
            record = _parse_raw(raw, known_drugs)
        except ClinicalParseError as exc:
            if len(messages) > 1:
                raise ClinicalParseError(f"message {index} of {len(messages)}: {exc}") from exc
            raise
        record.warnings[:0] = global_warnings
        records.append(record)
    return records


def parse_message(text: bytes | str, *, known_drugs: Mapping[str, str] | None = None) -> ClinicalRecord:
    """Exactly one message → ClinicalRecord (ClinicalParseError if there are several)."""
    records = read_hl7v2(text, known_drugs=known_drugs)
    if len(records) != 1:
        raise ClinicalParseError(f"expected one HL7 v2 message, found {len(records)}")
    return records[0]


def _parse_raw(raw: _RawMessage, known_drugs: Mapping[str, str] | None) -> ClinicalRecord:
    enc, warnings = _encoding_from_msh(raw.segments[0])
    segments = [_Segment.parse(line, enc) for line in raw.segments]
    msh = segments[0]
    header = _header(msh)
    code, trigger = msh.get(9, 1), msh.get(9, 2)
    if not code:
        raise ClinicalParseError("MSH-9: message type missing")
    record = ClinicalRecord(
        format="hl7v2",
        message_type=header["type"],
        control_id=header["control_id"],
        sender=header["sender"],
        sent_at=header["sent_at"],
        version=header["version"],
    )
    record.warnings.extend(raw.warnings + warnings)
    if not trigger:
        record.warnings.append(f"MSH-9: trigger event missing (message type {code!r} only)")
    if not header["control_id"]:
        record.warnings.append("MSH-10: message control ID missing")
    if not header["version"]:
        record.warnings.append("MSH-12: version ID missing")
    if msh.get(7) and header["sent_at"] is None:
        record.warnings.append(f"MSH-7: invalid date/time {msh.get(7)!r}")

    reader = _MessageReader(record, segments, code, trigger, known_drugs)
    reader.read()
    return record


@dataclass
class _Order:
    """One ORC-headed order group (or RX segments without an ORC)."""

    orc: _Segment | None = None
    segments: list[_Segment] = field(default_factory=list)

    def first(self, seg_id: str) -> _Segment | None:
        return next((s for s in self.segments if s.id == seg_id), None)

    def after(self, seg_id: str, anchor: str) -> _Segment | None:
        """First ``seg_id`` after the first ``anchor`` segment (RXR belonging to RXE)."""
        seen = False
        for s in self.segments:
            seen = seen or s.id == anchor
            if seen and s.id == seg_id:
                return s
        return None


_ORDER_STATUS = {  # ORC-1 order control (table 0119) → medication status
    "NW": "active", "OK": "active", "RF": "active", "AF": "active", "OF": "active", "FU": "active",
    "XO": "active", "XX": "active", "RO": "active", "RP": "active", "RL": "active", "OR": "active",
    "OP": "active", "PY": "active", "SN": "active", "NA": "active", "SS": "active",
    "DC": "stopped", "OD": "stopped", "DR": "stopped", "CA": "stopped", "OC": "stopped",
    "CR": "stopped", "DF": "stopped", "UF": "stopped",
    "HD": "on-hold", "OH": "on-hold", "HR": "on-hold",
}
_ORC5_STATUS = {  # ORC-5 order status (table 0038)
    "CM": "completed", "DC": "stopped", "CA": "stopped", "HD": "on-hold", "IP": "active",
    "SC": "active", "A": "active", "ER": "unknown", "RP": "stopped",
}
_ROUTE_CODES = {  # table 0162 codes with no match in our route vocabulary
    "ID": "intradermal", "IO": "intraocular", "IP": "intraperitoneal", "IT": "intrathecal",
    "IA": "intra-arterial", "B": "buccal", "NG": "nasogastric", "GTT": "gastrostomy tube",
    "EP": "epidural", "IN": "nasal", "NS": "nasal", "OP": "ophthalmic", "OT": "otic", "TP": "topical",
    "AP": "topical", "VG": "vaginal", "IH": "inhaled", "TL": "sublingual", "MTH": "oral",
}
_ALLERGY_CATEGORY = {  # AL1-2 allergen type (table 0127)
    "DA": "drug", "MA": "other", "MC": "other", "FA": "food", "EA": "environment",
    "AA": "environment", "PA": "environment", "LA": "environment",
}
_IAM_STATUS = {"I": "inactive", "R": "resolved", "E": "entered-in-error"}  # table 0438
_SEVERITY = {"MI": "mild", "MO": "moderate", "SV": "severe", "U": ""}
_PATIENT_CLASS = {  # PV1-2 (table 0004)
    "E": "emergency", "I": "inpatient", "O": "outpatient", "P": "preadmit", "R": "recurring",
    "B": "obstetrics", "C": "commercial", "N": "not-applicable", "U": "unknown",
}
_NO_KNOWN_ALLERGY = {"NKA", "NKDA", "NO KNOWN ALLERGIES", "NO KNOWN DRUG ALLERGIES",
                     "NO KNOWN ALLERGY", "716186003", "409137002", "NONE KNOWN"}
# OBX-3 codes whose value is a medication list (LOINC): discharge meds, meds, history of meds …
_MEDICATION_LOINC = {"10160-0", "10183-2", "29549-3", "52471-0", "75311-1", "18610-6", "19009-0"}
_MEDICATION_TEXT = re.compile(r"\bmed(?:s|ication|ications|icines?)\b|\bprescription", re.I)


_READ_CACHE = 4096  # distinct OBX-3 / OBX-6 texts remembered per message


def _names_medication_list(coding: _Coding) -> bool:
    """OBX-3 says the value is a list of medications (LOINC discharge/medication codes, or "meds")."""
    return (coding.system == LOINC and coding.code in _MEDICATION_LOINC) or bool(
        _MEDICATION_TEXT.search(coding.text) or _MEDICATION_TEXT.search(coding.code)
    )


def _same_drug(code_a: str, name_a: str, code_b: str, name_b: str) -> bool:
    if code_a and code_b:
        return code_a == code_b
    a, b = name_a.lower().split(), name_b.lower().split()
    return bool(a and b) and (a[0] == b[0])


class _MessageReader:
    def __init__(
        self,
        record: ClinicalRecord,
        segments: list[_Segment],
        code: str,
        trigger: str,
        known_drugs: Mapping[str, str] | None,
    ) -> None:
        self.record = record
        self.segments = segments
        self.code = code.upper()
        self.trigger = trigger.upper()
        self.known = known_drugs

    def warn(self, text: str) -> None:
        self.record.warnings.append(text)

    def read(self) -> None:
        ids = [s.id for s in self.segments]
        pid = next((s for s in self.segments if s.id == "PID"), None)
        if pid is not None:
            self.record.patient = self.patient(pid)
            if ids.count("PID") > 1:
                self.warn(f"{ids.count('PID')} PID segments; the first is used")
        pv1 = next((s for s in self.segments if s.id == "PV1"), None)
        if pv1 is not None:
            self.record.encounter = self.encounter(pv1)
        self.allergies()
        finish_allergies(self.record)
        self.problems()
        self.medications()
        self.observations()
        rxa = [s for s in self.segments if s.id == "RXA"]
        if rxa:
            self.administrations(rxa)

    # -- PID: patient ------------------------------------------------------------------------

    def patient(self, pid: _Segment) -> PatientData:
        patient = PatientData()
        # PID-5 patient name (XPN): 1 family (FN.1 surname), 2 given. First repetition with a name.
        for rep in pid.reps(5):
            family, given = name_part(rep.get(1)), name_part(rep.get(2))
            if family or given:
                # literal ""/null name parts are not names
                patient.family, patient.given = family, given
                break
        # PID-7 date/time of birth.
        raw_birth = pid.get(7)
        birth = _as_date(_parse_dtm(raw_birth))
        if raw_birth and (birth is None or not 1850 <= birth.year <= date.today().year + 1):
            self.warn(f"PID-7: invalid birth date {raw_birth!r}")
            birth = None
        patient.birth_date = birth
        # PID-8 administrative sex (table 0001).
        sex = pid.get(8).upper()
        mapped = {"M": "M", "F": "F", "O": "O", "U": "U", "A": "O", "N": "U", "X": "O"}.get(sex, "")
        if sex and not mapped:
            self.warn(f"PID-8: unknown sex code {pid.get(8)!r}")
        patient.sex = mapped
        # PID-3 identifier list (CX): 1 id, 4 assigning authority (HD), 5 identifier type code.
        for rep in pid.reps(3):
            if rep.get(1):
                authority = rep.get(4, 1) or rep.get(4, 2)
                patient.identifiers.append(Identifier(rep.get(1), rep.get(5), authority))
        # PID-13 home phone (XTN): 1 number, else 5 country / 6 area / 7 local / 8 extension.
        for rep in pid.reps(13):
            phone = rep.get(1) or " ".join(
                p for p in (f"+{rep.get(5)}" if rep.get(5) else "", rep.get(6), rep.get(7)) if p
            )
            if rep.get(8) and not rep.get(1):
                phone += f" x{rep.get(8)}"
            if phone:
                patient.phone = phone
                break
        # PID-11 address (XAD): 1 street (SAD), 2 other designation, 3 city, 4 state, 5 zip, 6 country.
        for rep in pid.reps(11):
            street = ", ".join(p for p in (rep.text(1), rep.get(2)) if p)
            state_zip = " ".join(p for p in (rep.get(4), rep.get(5)) if p)
            address = ", ".join(p for p in (street, rep.get(3), state_zip, rep.get(6)) if p)
            if address:
                patient.address = address
                break
        return patient

    # -- PV1: encounter ----------------------------------------------------------------------

    def encounter(self, pv1: _Segment) -> EncounterData:
        klass = pv1.get(2)
        location = pv1.rep(3)  # PL: 1 point of care, 2 room, 3 bed, 4 facility (HD), 9 description
        facility = location.get(4, 1) or location.get(4, 2)
        if not facility:
            facility = location.get(9) or " / ".join(p for p in (location.get(1), location.get(2),
                                                                 location.get(3)) if p)
        encounter = EncounterData(
            patient_class=_PATIENT_CLASS.get(klass.upper(), klass),
            facility=facility,
            visit_number=pv1.get(19),  # PV1-19 visit number (CX.1)
            admit_at=_parse_dtm(pv1.get(44)),  # PV1-44 admit date/time
            discharge_at=_parse_dtm(pv1.get(45)),  # PV1-45 discharge date/time (first repetition)
        )
        for n, value in ((44, encounter.admit_at), (45, encounter.discharge_at)):
            if pv1.get(n) and value is None:
                self.warn(f"PV1-{n}: invalid date/time {pv1.get(n)!r}")
        return encounter

    # -- AL1 / IAM: allergies ----------------------------------------------------------------

    def allergies(self) -> None:
        seen: list[AllergyData] = []
        for seg in self.segments:
            if seg.id not in {"AL1", "IAM"}:
                continue
            # AL1-3 / IAM-3 allergen code (CE): code, text, coding system.
            coding = _coding(seg.rep(3))
            substance = coding.text or coding.original_text or coding.code
            if not substance:
                self.warn(f"{seg.id}-3: allergen missing; segment ignored")
                continue
            scope = no_known_scope({coding.code} - {""}, substance)
            if scope or substance.upper() in _NO_KNOWN_ALLERGY or coding.code.upper() in _NO_KNOWN_ALLERGY:
                type_code = seg.get(2).upper()
                if scope == "other" or (type_code and _ALLERGY_CATEGORY.get(type_code) in ("food", "environment")):
                    self.warn(f"{seg.id}: {substance!r} is not about drugs: not NKDA")
                else:
                    self.record.no_known_allergies = True
                continue
            if placeholder(substance) and not coding.code:
                self.warn(f"{seg.id}-3: {substance!r} is a placeholder, not an allergy")
                continue
            # AL1-2 allergen type (table 0127).
            type_code = seg.get(2).upper()
            category = _ALLERGY_CATEGORY.get(type_code, "")
            if type_code and not category:
                category = "drug" if type_code.startswith("DRUG") else (
                    "food" if type_code.startswith("FOOD") else "other")
            # AL1-4 severity (table 0128), code or text.
            sev_code, sev_text = seg.get(4, 1).upper(), seg.get(4, 2).lower()
            severity = _SEVERITY.get(sev_code, "")
            for word in (sev_code.lower(), sev_text):
                if not severity and word in {"mild", "moderate", "severe"}:
                    severity = word
            allergy = AllergyData(
                substance=substance,
                code=coding.code,
                code_system=coding.system,
                category=category,
                reaction=[r.get(2) or r.get(1) for r in seg.reps(5) if r.get(2) or r.get(1)],
                severity=severity,
                status="active",
            )
            if seg.id == "IAM":
                # IAM-6 allergy action code (table 0206): D delete; IAM-17 clinical status (0438).
                if seg.get(6).upper() == "D":
                    continue
                clinical = seg.get(17).upper()
                allergy.status = _IAM_STATUS.get(clinical, "active")
            if allergy in seen:
                self.warn(f"{seg.id}: duplicate allergy {substance!r} ignored")
                continue
            seen.append(allergy)
        self.record.allergies.extend(seen)

    # -- DG1 / PRB: problems -----------------------------------------------------------------

    def problems(self) -> None:
        for seg in self.segments:
            if seg.id == "DG1":
                # DG1-3 diagnosis code (CE); DG1-2 (deprecated) coding method; DG1-4 description;
                # DG1-5 diagnosis date/time.
                coding = _coding(seg.rep(3), default_system=seg.get(2))
                if not (coding.code or coding.text or seg.get(4)):
                    continue
                self.record.problems.append(ProblemData(
                    code=coding.code,
                    code_system=coding.system,
                    description=coding.text or seg.get(4),
                    onset=_as_date(_parse_dtm(seg.get(5))),
                ))
            elif seg.id == "PRB":
                # PRB-3 problem ID (CE); PRB-16 onset date; PRB-14 life cycle status.
                coding = _coding(seg.rep(3))
                if coding.code and not coding.text and not seg.get(3, 3) and " " in coding.code:
                    coding = _Coding(text=coding.code)  # free text written in the identifier
                if not (coding.code or coding.text):
                    continue
                self.record.problems.append(ProblemData(
                    code=coding.code,
                    code_system=coding.system if coding.code else "",
                    description=coding.text,
                    onset=_as_date(_parse_dtm(seg.get(16))),
                    status=seg.get(14, 2).lower() or seg.get(14).lower(),
                ))

    # -- ORC / RXO / RXE / RXD / RXR / RXC / TQ1: medication orders --------------------------

    def medications(self) -> None:
        orders: list[_Order] = []
        current: _Order | None = None
        for seg in self.segments:
            if seg.id == "ORC":
                current = _Order(orc=seg)
                orders.append(current)
            elif seg.id in {"RXO", "RXE", "RXD", "RXR", "RXC", "TQ1", "TQ2", "RXG"}:
                if current is None:
                    current = _Order()
                    orders.append(current)
                current.segments.append(seg)
        for number, order in enumerate(orders, start=1):
            medication = self.order_medication(order, number)
            if medication is not None:
                self.record.medications.append(medication)
                self.record.medications.extend(self.other_drugs(order, number, medication))

    def other_drugs(self, order: _Order, number: int, primary: MedicationData) -> list[MedicationData]:
        """RXO / RXE / RXD of one order naming different drugs: each is kept (HL7 v2.5.1 ch. 4A: RXO
        is what was requested, RXE what pharmacy encoded, RXD what was dispensed — a dispensed drug
        that differs is a substitution a pharmacist must see)."""
        extra: list[MedicationData] = []
        seen = [(primary.code, primary.name.lower())]
        for seg_id, field_no in (("RXO", 1), ("RXE", 2), ("RXD", 2)):
            seg = order.first(seg_id)
            if seg is None or seg_id == primary.source:
                continue
            coding = _coding(seg.rep(field_no))
            name = coding.text or coding.original_text or coding.code
            if not name or any(_same_drug(coding.code, name, code, other) for code, other in seen):
                continue
            seen.append((coding.code, name.lower()))
            med = MedicationData(name=name, code=coding.code, code_system=coding.system, source=seg_id,
                                 status=primary.status, start_date=primary.start_date,
                                 prescriber=primary.prescriber)
            if seg_id == "RXO":  # RXO-2/3/4 requested give amount, RXO-7/6 instructions, RXO-11/12, RXO-13
                med.dose = self.amount(seg.get(2), seg.get(3), _unit(seg.rep(4)))
                instructions = " ".join(r.get(2) or r.get(1) for n in (7, 6) for r in seg.reps(n)
                                        if r.get(2) or r.get(1))
                if seg.get(11):
                    med.quantity = " ".join(p for p in (seg.get(11), _unit(seg.rep(12))) if p)
                med.refills = self.refills(seg, 13)
            elif seg_id == "RXE":  # RXE-3/4/5 give amount, RXE-7 instructions, RXE-10/11, RXE-12
                med.dose = self.amount(seg.get(3), seg.get(4), _unit(seg.rep(5)))
                instructions = " ".join(r.get(2) or r.get(1) for r in seg.reps(7) if r.get(2) or r.get(1))
                if seg.get(10):
                    med.quantity = " ".join(p for p in (seg.get(10), _unit(seg.rep(11))) if p)
                med.refills = self.refills(seg, 12)
            else:  # RXD-4/5 actual dispense amount, RXD-9 notes
                instructions = " ".join(r.get(2) or r.get(1) for r in seg.reps(9) if r.get(2) or r.get(1))
                if seg.get(4):
                    med.quantity = " ".join(p for p in (seg.get(4), _unit(seg.rep(5))) if p)
            rxr = order.after("RXR", seg_id)
            if rxr is not None:
                med.route = self.route(rxr.rep(1))
            if instructions:
                parsed = parse_sig(instructions)
                med.frequency, med.as_needed = parsed.frequency_code, parsed.as_needed
                if not med.route and parsed.confidence.get("route", 0) >= REVIEW_THRESHOLD:
                    med.route = parsed.route
            med.text = instructions or name
            if primary.source == "RXD" and seg_id == "RXO":
                primary.text = f"{primary.name} (dispensed as a substitution for {name})"
                self.warn(f"order {number}: RXD-2 dispensed {primary.name!r} differs from RXO-1 requested "
                          f"{name!r}: kept as a substitution, check it")
            elif seg_id == "RXD":
                med.text = f"{name} (dispensed as a substitution for {primary.name})"
                self.warn(f"order {number}: RXD-2 dispensed {name!r} differs from {primary.source} "
                          f"{primary.name!r}: kept as a substitution, check it")
            else:
                self.warn(f"order {number}: {seg_id}-{field_no} {name!r} differs from {primary.source} "
                          f"{primary.name!r}: both kept")
            extra.append(med)
        return extra

    def order_medication(self, order: _Order, number: int) -> MedicationData | None:
        rxe, rxo, rxd = order.first("RXE"), order.first("RXO"), order.first("RXD")
        rxcs = [s for s in order.segments if s.id == "RXC"]
        if not (rxe or rxo or rxd or rxcs):
            return None
        med = MedicationData()
        # Drug: RXE-2 give code, else RXD-2 dispense/give code, else RXO-1 requested give code.
        source_seg, code_field = (rxe, 2) if rxe else (rxd, 2) if rxd else (rxo, 1) if rxo else (None, 0)
        if source_seg is not None:
            coding = _coding(source_seg.rep(code_field))
            med.code, med.code_system = coding.code, coding.system
            med.name = coding.text or coding.original_text or coding.code
            med.source = source_seg.id
            original = coding.original_text
        else:  # compound given only as components
            med.source, original = "RXC", ""
        # RXC compound components: RXC-1 type (A additive, B base), 2 code, 3 amount, 4 units.
        components = []
        for rxc in rxcs:
            comp = _coding(rxc.rep(2))
            amount = " ".join(p for p in (rxc.get(3), _unit(rxc.rep(4))) if p)
            components.append(" ".join(p for p in (comp.text or comp.code, amount) if p))
        if not med.name and components:
            med.name = " + ".join(components)

        # Dose: RXE-3/4 give amount min/max + RXE-5 units; RXO-2/3 + RXO-4; RXD-4/5 actual dispense.
        if rxe:
            med.dose = self.amount(rxe.get(3), rxe.get(4), _unit(rxe.rep(5)))
            # RXE-25/26 give strength + units.
            med.strength = " ".join(p for p in (rxe.get(25), _unit(rxe.rep(26))) if p) if rxe.get(25) else ""
            # RXE-10/11 dispense amount/units; RXE-12 number of refills.
            med.quantity = " ".join(p for p in (rxe.get(10), _unit(rxe.rep(11))) if p) if rxe.get(10) else ""
            med.refills = self.refills(rxe, 12)
        if rxo:
            if not med.dose:
                med.dose = self.amount(rxo.get(2), rxo.get(3), _unit(rxo.rep(4)))
            if not med.strength and rxo.get(18):  # RXO-18/19 requested give strength + units
                med.strength = " ".join(p for p in (rxo.get(18), _unit(rxo.rep(19))) if p)
            if not med.quantity and rxo.get(11):  # RXO-11/12 requested dispense amount/units
                med.quantity = " ".join(p for p in (rxo.get(11), _unit(rxo.rep(12))) if p)
            if med.refills is None:
                med.refills = self.refills(rxo, 13)  # RXO-13 number of refills
        if rxd and not med.quantity and rxd.get(4):
            med.quantity = " ".join(p for p in (rxd.get(4), _unit(rxd.rep(5))) if p)

        # Text: RXE-7 provider's administration instructions, else RXE-21 special dispensing
        # instructions, else RXO-7 / RXO-6, else RXD-9 dispense notes; then the CWE.9 drug text.
        instructions = ""
        for seg, n in ((rxe, 7), (rxe, 21), (rxo, 7), (rxo, 6), (rxd, 9)):
            if seg is not None and not instructions:
                instructions = " ".join(r.get(2) or r.get(1) for r in seg.reps(n) if r.get(2) or r.get(1))
        med.text = instructions or original or med.name
        if components:
            med.text += f" [components: {'; '.join(components)}]"
        sig = parse_sig(instructions) if instructions else None

        # Route: RXR-1 (table 0162) — the RXR of the RXE, else of the RXD, else the first.
        rxr = order.after("RXR", "RXE") or order.after("RXR", "RXD") or order.first("RXR")
        if rxr is not None:
            med.route = self.route(rxr.rep(1))
        elif sig and sig.route and sig.confidence.get("route", 0) >= REVIEW_THRESHOLD:
            med.route = sig.route

        # Frequency: TQ1-3 repeat pattern; RXE-1 / ORC-7 (TQ, deprecated) interval TQ.2.
        tq1 = order.after("TQ1", "RXE") or order.first("TQ1")
        orc = order.orc
        timings = [t.get(3, 1) or t.get(3, 2) for t in (tq1, order.first("TQ1")) if t is not None]
        timings += [seg.get(n, 2, 1) for seg, n in ((rxe, 1), (orc, 7)) if seg is not None]
        timings = [t for t in timings if t]
        for timing in timings:
            med.frequency = normalize_frequency(timing)
            if med.frequency:
                break
        if timings and not med.frequency:
            self.warn(f"order {number}: repeat pattern {timings[0]!r} not recognised")
        if not med.frequency and sig and sig.frequency:
            med.frequency = sig.frequency_code
        # PRN: TQ1-9 priority / TQ.6 priority "PRN", or "as needed" in the instructions.
        priorities = [tq1.get(9) if tq1 else "", rxe.get(1, 6) if rxe else "", orc.get(7, 6) if orc else ""]
        med.as_needed = (
            any(p.upper() == "PRN" for p in priorities)
            or any("PRN" in t.upper() for t in timings)
            or bool(not timings and sig and sig.as_needed)  # free text only without structured timing
        )

        # Strength from the drug text when no field carries it ("Ampicillin 250 mg caps").
        if not med.strength:
            named = parse_sig(original or med.name)
            med.strength = named.strength_text

        # Dates: TQ1-7/8 start/end; TQ.4/TQ.5 of RXE-1 / ORC-7; RXE-32 original order date.
        start = end = None
        if tq1 is not None:
            start, end = _parse_dtm(tq1.get(7)), _parse_dtm(tq1.get(8))
        for seg, n in ((rxe, 1), (orc, 7)):
            if seg is not None:
                start = start or _parse_dtm(seg.get(n, 4))
                end = end or _parse_dtm(seg.get(n, 5))
        if rxe is not None:
            start = start or _parse_dtm(rxe.get(32))
        med.start_date, med.end_date = _as_date(start), _as_date(end)

        # Status: ORC-1 order control (table 0119), else ORC-5 order status (table 0038).
        if orc is not None:
            med.status = _ORDER_STATUS.get(orc.get(1).upper(), "") or _ORC5_STATUS.get(
                orc.get(5).upper(), "unknown")
            # ORC-12 ordering provider (XCN).
            med.prescriber = _person_name(orc.rep(12))
        else:
            med.status = "unknown"
        if not med.prescriber:
            for seg, n in ((rxo, 14), (rxe, 13)):  # RXO-14 / RXE-13 ordering provider's DEA (XCN)
                if seg is not None and not med.prescriber:
                    med.prescriber = _person_name(seg.rep(n))
        return med

    @staticmethod
    def amount(minimum: str, maximum: str, units: str) -> str:
        if not minimum:
            return ""
        value = f"{minimum}-{maximum}" if maximum and maximum != minimum else minimum
        return f"{value} {units}".strip()

    def refills(self, seg: _Segment, n: int) -> int | None:
        raw = seg.get(n)
        value = _int(raw)
        if raw and value is None:
            self.warn(f"{seg.id}-{n}: number of refills {raw!r} is not a number")
        return value

    @staticmethod
    def route(rep: _Rep) -> str:
        code, text = rep.get(1).upper(), rep.get(2)
        if code in _ROUTE_CODES:
            return _ROUTE_CODES[code]
        return normalize_route(code) or normalize_route(text) or (text or code).lower()

    # -- OBX: lab results and medication text -----------------------------------------------

    def observations(self) -> None:
        obr_time: datetime | date | None = None
        is_result = self.code in {"ORU", "OUL"}
        results = self.record.lab_results
        # One message often repeats the same OBX-3 identifier and OBX-6 units thousands of times:
        # each distinct text is read once (bounded, so a message of all-different codes costs no more).
        codings: dict[str, tuple[_Coding, bool]] = {}
        units: dict[str, str] = {}
        for seg in self.segments:
            if seg.id == "OBR":
                obr_time = _parse_dtm(seg.get(7))  # OBR-7 observation date/time
                seg.release()
                continue
            if seg.id != "OBX":
                continue
            value_type = seg.get(2).upper()
            raw_code = seg.raw(3)
            known = codings.get(raw_code)
            if known is None:
                coding = _coding(seg.rep(3))  # OBX-3 observation identifier
                known = (coding, _names_medication_list(coding))
                if len(codings) < _READ_CACHE:
                    codings[raw_code] = known
            coding, explicit = known
            if self.is_medication_obx(seg, value_type, coding, explicit=explicit):
                seg.release()
                continue
            if not is_result:
                seg.release()
                continue
            value = self.obx_value(seg, value_type)
            if not (coding.code or coding.text or value):
                seg.release()
                continue
            raw_unit = seg.raw(6)
            unit = units.get(raw_unit)
            if unit is None:
                unit = _unit(seg.rep(6))  # OBX-6 units
                if len(units) < _READ_CACHE:
                    units[raw_unit] = unit
            results.append(LabResultData(
                code=coding.code,
                code_system=coding.system,
                name=coding.text or coding.original_text,
                value=value,
                unit=unit,
                reference_range=seg.get(7),  # OBX-7 references range
                abnormal_flag=seg.get(8),  # OBX-8 abnormal flags (first repetition)
                observed_at=_parse_dtm(seg.get(14)) or obr_time,  # OBX-14 observation date/time
            ))
            seg.release()  # each OBX is read once: its split fields need not stay in memory

    def obx_value(self, seg: _Segment, value_type: str) -> str:
        """OBX-5 as text; repetitions joined with "; "."""
        values = []
        for rep in seg.reps(5):
            if value_type in {"CE", "CWE", "CNE", "CF"}:
                values.append(rep.get(2) or rep.get(1) or rep.get(9))
            elif value_type == "SN":  # comparator ^ num1 ^ separator/suffix ^ num2
                values.append("".join(rep.get(i) for i in range(1, 5)))
            elif value_type == "ED":  # encapsulated data: not shown as a value
                continue
            elif value_type == "RP":
                values.append(rep.get(1))
            elif value_type in {"TX", "FT", "ST", "NM", "TS", "DT", "TM", "DTM", "ID", "IS"}:
                values.append(rep.get(1) if value_type not in {"TX", "FT", "ST"} else rep.whole())
            else:
                values.append(" ".join(rep.text(i) for i in range(1, len(rep.comps()) + 1)).strip())
        return "; ".join(v for v in values if v)

    def is_medication_obx(self, seg: _Segment, value_type: str, coding: _Coding, *,
                          explicit: bool | None = None) -> bool:
        """OBX whose value is a medication list (ADT^A03 discharge medications and similar)."""
        if explicit is None:
            explicit = _names_medication_list(coding)
        if value_type in {"CE", "CWE"} and explicit:
            for rep in seg.reps(5):
                drug = _coding(rep)
                name = drug.text or drug.original_text or drug.code
                if name:
                    self.record.medications.append(MedicationData(
                        text=name, name=name, code=drug.code, code_system=drug.system,
                        status="active", source="OBX-5"))
            return True
        if value_type not in {"TX", "FT", "ST"}:
            return False
        discharge = self.code == "ADT" and self.trigger == "A03"
        if not (explicit or discharge):
            return False
        text = "\n".join(rep.whole() for rep in seg.reps(5))
        items = parse_medication_list(text, known_drugs=self.known)
        confident = [p for p in items if not p.needs_review and (p.strength or p.frequency or p.dose)]
        if not explicit and not confident:
            return False  # ordinary text in a discharge message
        chosen = items if explicit else confident
        for parsed in chosen:
            self.record.medications.append(self.sig_medication(parsed))
            if parsed.needs_review:
                name = parsed.drug or parsed.drug_text or parsed.text
                self.warn(f"OBX-5: medication line {parsed.text!r} not confidently read "
                          f"(drug {name!r}, confidence {parsed.confidence.get('drug', 0.0):.2f}); review")
        skipped = len(items) - len(chosen)
        if skipped:
            self.warn(f"OBX-5: {skipped} line(s) of a discharge text not read as medications")
        return True

    @staticmethod
    def sig_medication(parsed: ParsedSig) -> MedicationData:
        return MedicationData(
            text=parsed.text,
            name=parsed.drug or parsed.drug_text,
            strength=parsed.strength_text,
            dose=parsed.dose,
            route=parsed.route,
            frequency=parsed.frequency,
            as_needed=parsed.as_needed,
            status=parsed.status or "active",
            source="OBX-5",
        )

    # -- RXA: administrations (vaccines in VXU) ---------------------------------------------

    def administrations(self, rxas: list[_Segment]) -> None:
        vaccines = []
        for rxa in rxas:
            coding = _coding(rxa.rep(5))  # RXA-5 administered code
            name = coding.text or coding.code
            if self.code == "VXU" or coding.system == CVX:
                vaccines.append(f"{coding.code} {name}".strip())
                continue
            # RAS and other administration messages: RXA-6/7 amount/units, RXA-3 start.
            self.record.medications.append(MedicationData(
                text=name, name=name, code=coding.code, code_system=coding.system,
                dose=self.amount(rxa.get(6), "", _unit(rxa.rep(7))),
                start_date=_as_date(_parse_dtm(rxa.get(3))), status="completed", source="RXA",
            ))
        if vaccines:
            self.warn(f"RXA: {len(vaccines)} vaccine administration(s) not listed as medications: "
                      + "; ".join(vaccines))


# ---------------------------------------------------------------------------------------------
# ACK
# ---------------------------------------------------------------------------------------------


def _lenient_msh(text: str) -> tuple[_Encoding, list[str]]:
    """Encoding and raw MSH fields even from a malformed header (for AR acknowledgements)."""
    try:
        line = _first_msh_line(text)
    except ClinicalParseError:
        return STANDARD, []
    try:
        enc, _ = _encoding_from_msh(line)
    except ClinicalParseError:
        separator = line[3:4] if line[3:4] and not line[3:4].isalnum() else "|"
        enc = _Encoding(field=separator)
    return enc, ["MSH", enc.field, *line[4:].split(enc.field)]


def build_ack(
    message: bytes | str | ClinicalRecord,
    code: str,
    error: str = "",
    *,
    control_id: str | None = None,
    now: datetime | None = None,
    error_code: str = "",
) -> str:
    """HL7 ACK for ``message`` (its text, or a ClinicalRecord when the text is gone).

    MSH with sending/receiving application and facility swapped, MSA-1 ``code`` (AA, AE, AR or
    the commit codes CA, CE, CR), MSA-2 the original MSH-10; with ``error``, MSA-3 and an ERR
    segment (ERR-3 ``error_code`` from table 0357, default 207 application internal error;
    ERR-4 severity E; ERR-8 the text). Never raises on unreadable input.
    """
    code = code.upper()
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {sorted(ACK_CODES)}, not {code!r}")
    enc = STANDARD
    sending = ["", ""]  # MSH-3, MSH-4 of the original (raw field text)
    receiving = ["", ""]  # MSH-5, MSH-6
    original_id = trigger = processing = version = ""
    if isinstance(message, ClinicalRecord):
        app, _, facility = message.sender.partition("^")
        sending = [_escape(app, enc), _escape(facility, enc)]
        original_id = _escape(message.control_id, enc)
        trigger = message.message_type.partition("^")[2]
        version = message.version
    else:
        try:
            text, _ = _decode(message)
        except ClinicalParseError:
            text = ""
        enc, fields = _lenient_msh(text)

        def raw(n: int) -> str:
            return _clean(fields[n]) if n < len(fields) else ""

        sending, receiving = [raw(3), raw(4)], [raw(5), raw(6)]
        msh = _Segment("MSH", fields, enc)
        original_id, trigger = _escape(msh.get(10), enc), msh.get(9, 2)
        processing, version = msh.get(11, 1), msh.get(12, 1)
    stamp = (now or datetime.now()).strftime("%Y%m%d%H%M%S")
    ack_id = control_id or uuid.uuid4().hex[:20]
    f, c = enc.field, enc.component
    message_type = f"ACK{c}{_escape(trigger, enc)}{c}ACK" if trigger else "ACK"
    msh_fields = [
        "MSH", enc.msh2, receiving[0], receiving[1], sending[0], sending[1], stamp, "",
        message_type, _escape(ack_id, enc), _escape(processing, enc) or "P", _escape(version, enc) or "2.5.1",
    ]
    segments = [f.join(msh_fields)]
    msa = ["MSA", code, original_id]
    if error:
        msa.append(_escape(error, enc)[:80])
    segments.append(f.join(msa))
    if error:
        err_code = error_code or "207"
        err_text = _ERROR_CODES.get(err_code, "")
        hl7_error = c.join((err_code, err_text, "HL70357")) if err_text else _escape(err_code, enc)
        segments.append(f.join(["ERR", "", "", hl7_error, "E", "", "", "", _escape(error, enc)]))
    return "\r".join(segments) + "\r"
