"""C-CDA R2.1 reader: full ClinicalDocuments and bare section fragments → ``ClinicalRecord``.

Pure: no Django. Parsed with defusedxml (DTDs, entity declarations and external references are
refused). Elements are matched by local name, so a document with the ``urn:hl7-org:v3`` default
namespace, a fragment without any namespace and a fragment that uses ``xsi:``/``sdtc:`` prefixes it
never declares all read the same way (the last is wrapped in an element that declares them).

Sections are found by ``templateId/@root`` or by their LOINC section code — never by position — and
entries by their templates: Medication Activity (2.16.840.1.113883.10.20.22.4.16), Allergy Concern
Act (…4.30) → Allergy-Intolerance Observation (…4.7), Problem Observation (…4.4) and Result
Observation (…4.2). Immunizations are not medications. Names that only live in the narrative are
resolved through ``originalText/reference/@value="#id"``; ``nullFlavor`` means absent.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

import defusedxml
import defusedxml.ElementTree as DET

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
    name_parts,
    no_known_scope,
    placeholder,
)
from pharmacy.interop.detect import decode_unicode, unicode_encoding
from pharmacy.interop.fhir import (
    ENCOUNTER_CLASS,
    normalise_route,
    strength_from_name,
)
from pharmacy.interop.sig import frequency_from_period, meal_qualifier, parse_directions

__all__ = ["read_ccda", "oid_code_system"]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_KNOWN_PREFIXES = {
    "xsi": XSI_NS,
    "sdtc": "urn:hl7-org:sdtc",
    "pharm": "urn:hl7-org:pharm",
    "voc": "urn:hl7-org:v3/voc",
    "cda": "urn:hl7-org:v3",
    "v3": "urn:hl7-org:v3",
}

OIDS = {
    "2.16.840.1.113883.6.88": RXNORM,
    "2.16.840.1.113883.6.69": NDC,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.90": ICD10CM,
    "2.16.840.1.113883.12.292": CVX,
}


def oid_code_system(oid: str | None) -> str:
    """C-CDA code system OID → our short name; other OIDs are ``local``."""
    if not oid:
        return LOCAL
    return OIDS.get(oid.strip(), LOCAL)


T = "2.16.840.1.113883.10.20.22"
# CCD 1.0 (HL7 CCD, 2007) templates, also carried by HITSP C32 and IHE PCC documents.
C = "2.16.840.1.113883.10.20.1"
IHE = "1.3.6.1.4.1.19376.1.5.3.1"
HITSP = "2.16.840.1.113883.3.88.11"
# section kind → (template roots, LOINC section codes)
SECTIONS = {
    "medications": ({f"{T}.2.1", f"{T}.2.1.1", f"{C}.8", f"{IHE}.3.19", f"{HITSP}.83.112"}, {"10160-0"}),
    "discharge_medications": ({f"{T}.2.11", f"{T}.2.11.1", f"{IHE}.3.22"}, {"10183-2", "75311-1"}),
    "admission_medications": ({f"{T}.2.44"}, {"42346-7"}),
    "allergies": ({f"{T}.2.6", f"{T}.2.6.1", f"{C}.2", f"{IHE}.3.13", f"{HITSP}.83.102"}, {"48765-2"}),
    "problems": ({f"{T}.2.5", f"{T}.2.5.1", f"{C}.11", f"{IHE}.3.6", f"{HITSP}.83.103"}, {"11450-4"}),
    "results": ({f"{T}.2.3", f"{T}.2.3.1", f"{C}.14", f"{HITSP}.83.122"}, {"30954-2"}),
}
MED_SECTIONS = ("medications", "discharge_medications", "admission_medications")

# Entry templates: C-CDA R1.1/R2.1 first, then CCD 1.0 / HITSP C32 / IHE PCC equivalents.
TPL_MED_ACTIVITY = frozenset({f"{T}.4.16", f"{C}.24", f"{HITSP}.83.8", f"{IHE}.4.7"})
TPL_SUPPLY_ORDER = frozenset({f"{T}.4.17", f"{C}.34", f"{IHE}.4.7.3"})
TPL_FREE_TEXT_SIG = frozenset({f"{T}.4.147"})
TPL_ALLERGY_CONCERN = frozenset({f"{T}.4.30", f"{C}.27", f"{HITSP}.83.6", f"{IHE}.4.5.3"})
TPL_ALLERGY_OBS = frozenset({f"{T}.4.7", f"{C}.18", f"{IHE}.4.6"})
TPL_REACTION = frozenset({f"{T}.4.9", f"{C}.54", f"{IHE}.4.5"})
TPL_SEVERITY = frozenset({f"{T}.4.8", f"{C}.55", f"{IHE}.4.1"})
TPL_ALLERGY_STATUS = frozenset({f"{T}.4.28", f"{C}.39"})
TPL_CRITICALITY = frozenset({f"{T}.4.145"})
TPL_PROBLEM_OBS = frozenset({f"{T}.4.4", f"{C}.28", f"{IHE}.4.5"})
TPL_PROBLEM_STATUS = frozenset({f"{T}.4.6", f"{C}.50"})
TPL_RESULT_OBS = frozenset({f"{T}.4.2", f"{C}.31"})
TPL_IMMUNIZATION = frozenset({f"{T}.4.52", f"{C}.24.2"})
CRITICALITY_CODES = {"CRITH": "high", "CRITL": "low", "CRITU": "unable-to-assess"}
# Allergy-Intolerance Observation values that are about drugs or every substance (a negated one is
# NKDA); food / environment ones are not (SNOMED CT, C-CDA value set 2.16.840.1.113883.3.88.12.3221.6.2).
DRUG_OR_ANY_KINDS = frozenset({"416098002", "59037007", "419511003", "419199007", "420134006", "418038007",
                               "106190000", "609328004", "473010000"})
DRUG_ALLERGENS = frozenset({"410942007", "373873005"})  # drug or medicament; pharmaceutical product

# document type: (template root, LOINC document code) → message_type; most specific first
DOC_TYPES = [
    (f"{T}.1.8", "18842-5", "DischargeSummary"),
    (f"{T}.1.13", "18761-7", "TransferSummary"),
    (f"{T}.1.3", "34117-2", "HistoryAndPhysical"),
    (f"{T}.1.2", "34133-9", "CCD"),
    (C, "34133-9", "CCD"),  # CCD 1.0
    (f"{HITSP}.32.1", "34133-9", "CCD"),  # HITSP C32
]

SEVERITY_CODES = {
    # ranges ("mild to moderate", "moderate to severe") take their upper end: the safer reading
    "255604002": "mild", "371923003": "moderate", "6736007": "moderate", "371924009": "severe",
    "24484000": "severe", "399166001": "severe",
}
SEVERITY_RANK = {"mild": 1, "moderate": 2, "severe": 3}
ALLERGY_STATUS_CODES = {"55561003": "active", "73425007": "inactive", "413322009": "resolved"}
# Allergy-Intolerance Observation value (the kind of propensity) → category
ALLERGY_CATEGORY = {
    "416098002": "drug", "59037007": "drug", "419511003": "drug", "414285001": "food",
    "235719002": "food", "418471000": "food", "419199007": "other", "420134006": "other",
    "418038007": "other", "232347008": "environment", "426232007": "environment",
}
# allergen codes that name no particular substance (used with negationInd for "no known allergies")
GENERIC_ALLERGENS = frozenset({"105590001", "410942007", "373873005", "406463001", "255620007"})
MED_STATUS = {
    "active": "active", "completed": "completed", "aborted": "stopped", "suspended": "on-hold",
    "cancelled": "cancelled", "held": "on-hold", "new": "active", "nullified": "entered-in-error",
}
_ID_TYPES = {"2.16.840.1.113883.4.1": "SS", "2.16.840.1.113883.4.6": "NPI"}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.DOTALL)
_PREFIX_RE = re.compile(r"[<\s/]([A-Za-z_][\w.-]*):[A-Za-z_]")
_DTD_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _decode(data: bytes) -> str:
    try:
        text = decode_unicode(data)  # UTF-8 with a BOM, UTF-16, UTF-32
    except UnicodeDecodeError as exc:
        raise ClinicalParseError(f"XML cannot be decoded: {exc}") from exc
    if text is not None:
        return text
    m = re.match(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']", data)
    encoding = m.group(1).decode("ascii") if m else "utf-8"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise ClinicalParseError(f"XML cannot be decoded as {encoding}: {exc}") from exc


def _safe_fromstring(raw: bytes) -> Element:
    return DET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _parse(data: bytes | str, warnings: list[str]) -> Element:
    if isinstance(data, str):
        text = data.lstrip("\ufeff")
        raw = _XML_DECL_RE.sub("", text, count=1).encode("utf-8")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        text = None
        encoding, _skip = unicode_encoding(raw)
        if encoding and encoding != "utf-8":  # UTF-16/32: hand the parser UTF-8 without the declaration
            text = _decode(raw)
            raw = _XML_DECL_RE.sub("", text, count=1).encode("utf-8")
    else:
        raise ClinicalParseError(f"cannot read C-CDA from {type(data).__name__}")
    if not raw.strip():
        raise ClinicalParseError("empty input: expected a C-CDA document or section")
    if text is None:
        text = _decode(raw)
    if _DTD_RE.search(text):
        raise ClinicalParseError("XML with a DTD or entity declarations is refused (XXE protection)")
    try:
        return _safe_fromstring(raw)
    except _REFUSED as exc:
        raise ClinicalParseError(f"XML refused: {exc} (DTDs and entities are not allowed)") from exc
    except ET.ParseError as exc:
        if "unbound prefix" not in str(exc):
            raise ClinicalParseError(f"XML is not well-formed: {exc}") from exc
    # A fragment cut out of a document: bind the prefixes it uses in a wrapper element.
    body = _XML_DECL_RE.sub("", text, count=1)
    prefixes = sorted({p for p in _PREFIX_RE.findall(body) if p not in ("xml", "xmlns")})
    decls = " ".join(
        f'xmlns:{p}="{_KNOWN_PREFIXES.get(p, "urn:x-undeclared:" + p)}"' for p in prefixes
    )
    wrapped = f"<ccdaFragment {decls}>{body}</ccdaFragment>".encode()
    try:
        root = _safe_fromstring(wrapped)
    except _REFUSED as exc:
        raise ClinicalParseError(f"XML refused: {exc} (DTDs and entities are not allowed)") from exc
    except ET.ParseError as exc:
        raise ClinicalParseError(f"XML is not well-formed: {exc}") from exc
    warnings.append(f"undeclared namespace prefixes bound to read the fragment: {', '.join(prefixes)}")
    return root


def _strip_namespaces(root: Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
        for key in [k for k in el.attrib if k.startswith("{")]:
            ns, local = key[1:].split("}", 1)
            new = f"xsi:{local}" if ns == XSI_NS else local
            value = el.attrib.pop(key)
            el.attrib.setdefault(new, value)


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def _tids(el: Element | None) -> set[str]:
    if el is None:
        return set()
    return {t.get("root", "") for t in el.findall("templateId")}


def _is_null(el: Element | None) -> bool:
    return el is None or bool(el.get("nullFlavor"))


def _attr(el: Element | None, path: str, name: str) -> str:
    """Attribute ``name`` of ``el.find(path)`` ("" when either is missing)."""
    if el is None:
        return ""
    child = el.find(path) if path else el
    return (child.get(name) or "").strip() if child is not None else ""


_REFUSED = (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden)


def _negated(el: Element) -> bool:
    return (el.get("negationInd") or "").strip().lower() == "true"


def parse_ts(value: str | None) -> datetime | date | None:
    """HL7 TS "20140103102500-0500" → datetime; "20180401" → date; partial ("2006", "201402") → None."""
    if not value:
        return None
    m = re.fullmatch(
        r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?)?([+-]\d{4})?", value.strip()
    )
    if not m:
        return None
    year, month, day, hh, mi, ss, tz = m.groups()
    try:
        if hh is None:
            return date(int(year), int(month), int(day))
        tzinfo = None
        if tz:
            sign = 1 if tz[0] == "+" else -1
            tzinfo = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])))
        return datetime(int(year), int(month), int(day), int(hh), int(mi or 0), int(ss or 0), tzinfo=tzinfo)
    except ValueError:
        return None


def _as_date(value: datetime | date | None) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value


def _num(value: str | None) -> str:
    if not value:
        return ""
    try:
        dec = Decimal(value.strip())
    except InvalidOperation:
        return value.strip()
    if not dec.is_finite():
        return ""
    if dec == dec.to_integral_value():
        return str(int(dec))
    return format(dec.normalize(), "f")


def _pq(el: Element | None) -> str:
    """PQ / IVL_PQ → "5 mg/kg", "2", "1-2 puff"; nullFlavor → ""."""
    if el is None or el.get("nullFlavor"):
        return ""
    value = _num(el.get("value"))
    unit = (el.get("unit") or "").strip()
    if not value:
        low, high = el.find("low"), el.find("high")
        lv = _num(low.get("value")) if low is not None and not low.get("nullFlavor") else ""
        hv = _num(high.get("value")) if high is not None and not high.get("nullFlavor") else ""
        unit = _attr(high, "", "unit") or _attr(low, "", "unit")
        value = f"{lv}-{hv}" if lv and hv else (lv or hv)
    if not value:
        return ""
    return f"{value} {unit}" if unit and unit != "1" else value


class _Doc:
    """Parsed tree plus the narrative ID index."""

    def __init__(self, root: Element) -> None:
        self.root = root
        self.ids: dict[str, Element] = {}
        for el in root.iter():
            ident = el.get("ID")
            if ident:
                self.ids.setdefault(ident, el)

    def narrative(self, reference: str | None) -> str:
        if not reference:
            return ""
        target = self.ids.get(reference.lstrip("#").strip())
        if target is None:
            return ""
        return _norm(" ".join(target.itertext()))

    def ref_text(self, el: Element | None) -> str:
        """Text of a <text>/<originalText>: its <reference> resolved, else its own content."""
        if el is None:
            return ""
        ref = el.find("reference")
        if ref is not None:
            resolved = self.narrative(ref.get("value"))
            if resolved:
                return resolved
        parts = [el.text or ""] + [child.tail or "" for child in el]
        own = _norm(" ".join(parts))
        if own:
            return own
        return _norm(" ".join(t for child in el if child.tag != "reference" for t in child.itertext()))

    def code(self, el: Element | None, prefer: tuple[str, ...] = ()) -> dict:
        """CD/CE → {code, system, display, original}; uses a translation when the code is null."""
        out = {"code": "", "system": "", "display": "", "original": "", "translated": ""}
        if el is None:
            return out
        out["original"] = self.ref_text(el.find("originalText"))
        candidates = []
        if el.get("code") and not el.get("nullFlavor"):
            candidates.append(el)
        candidates += [t for t in el.findall("translation") if t.get("code") and not t.get("nullFlavor")]
        chosen = None
        for name in prefer:
            chosen = next((c for c in candidates if oid_code_system(c.get("codeSystem")) == name), None)
            if chosen is not None:
                break
        if chosen is None and candidates:
            first = candidates[0]
            # a translation in a local/unknown system is not a code we can use
            if first is el or oid_code_system(first.get("codeSystem")) != LOCAL:
                chosen = first
        if chosen is not None:
            out["code"] = chosen.get("code", "").strip()
            out["system"] = oid_code_system(chosen.get("codeSystem"))
            out["display"] = _norm(chosen.get("displayName"))
            out["translated"] = "" if chosen is el else "yes"
        if not out["display"] and el.get("displayName"):
            out["display"] = _norm(el.get("displayName"))
        return out


def _has(el: Element, templates: str | frozenset[str]) -> bool:
    tids = _tids(el)
    return templates in tids if isinstance(templates, str) else bool(tids & templates)


def _first_with_template(el: Element, tag: str, template: str | frozenset[str]) -> list[Element]:
    """Elements ``tag`` carrying ``template`` below ``el`` (not descending into a match)."""
    found: list[Element] = []

    def walk(node: Element) -> None:
        for child in node:
            if child.tag == tag and _has(child, template):
                found.append(child)
                continue
            walk(child)

    walk(el)
    return found


def _relationship_targets(el: Element, tag: str, template: str | frozenset[str]) -> list[Element]:
    """Direct ``entryRelationship/<tag>`` children of ``el`` carrying ``template``."""
    return [
        child
        for rel in el.findall("entryRelationship")
        for child in rel.findall(tag)
        if _has(child, template)
    ]


def _person_name(el: Element | None) -> str:
    if el is None or el.get("nullFlavor"):
        return ""
    given = name_parts(g.text for g in el.findall("given"))
    family = name_parts(f.text for f in el.findall("family"))
    name = " ".join(p for p in (given, family) if p)
    return name or _norm(" ".join(el.itertext()))


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


class _CcdaReader:
    def __init__(self, doc: _Doc, record: ClinicalRecord) -> None:
        self.doc = doc
        self.record = record

    # sections --------------------------------------------------------------------------------

    @staticmethod
    def section_kind(section: Element) -> str:
        tids = _tids(section)
        code_el = section.find("code")
        code = code_el.get("code", "") if code_el is not None else ""
        for kind, (templates, codes) in SECTIONS.items():
            if tids & templates or code in codes:
                return kind
        return ""

    def read_sections(self, sections: list[Element]) -> int:
        recognised = 0
        for section in sections:
            kind = self.section_kind(section)
            if not kind:
                continue
            recognised += 1
            code_el = section.find("code")
            label = (code_el.get("code") if code_el is not None else "") or kind
            entries = section.findall("entry")
            section_text = self.doc.ref_text(section.find("text"))
            if section.get("nullFlavor") or (not entries and placeholder(section_text) == "unknown"):
                # "no information" is unknown: not an empty list, not "no known allergies"
                self.record.warnings.append(
                    f"section {label}: no information"
                    + (f" (nullFlavor {section.get('nullFlavor')})" if section.get("nullFlavor") else "")
                    + ": the list is unknown"
                )
                self._unknown(kind)
                continue
            if kind in MED_SECTIONS:
                read, unknown = 0, 0
                for entry in entries:
                    for sa in self._med_activities(entry):
                        med = self.medication(sa, label)
                        what = self._med_placeholder(med, sa)
                        if what:
                            unknown += what == "unknown"
                            self.record.warnings.append(
                                f"section {label}: {med.text or med.name or 'entry without a drug'!r} is a"
                                f" placeholder ({'no information' if what == 'unknown' else 'no medications'}),"
                                " not a medication")
                            continue
                        read += 1
                        self.record.medications.append(med)
                if unknown and not read:
                    self._unknown(kind)
            elif kind == "allergies":
                for entry in entries:
                    self.allergies(entry)
            elif kind == "problems":
                for entry in entries:
                    for obs in _first_with_template(entry, "observation", TPL_PROBLEM_OBS):
                        self.problem(obs, entry)
            elif kind == "results":
                for entry in entries:
                    for obs in _first_with_template(entry, "observation", TPL_RESULT_OBS):
                        self.result(obs)
        return recognised

    def _unknown(self, kind: str) -> None:
        if kind in MED_SECTIONS:
            self.record.medications_unknown = True
        elif kind == "allergies":
            self.record.allergies_unknown = True

    @staticmethod
    def _med_placeholder(m: MedicationData, sa: Element) -> str:
        """"unknown" / "none" when the entry is a placeholder, not a medication; "" otherwise."""
        if m.negated:
            return ""  # "no medications" as a negated generic entry: kept, compare ignores negated ones
        if m.code and m.code not in GENERIC_ALLERGENS:
            return ""
        texts = [t for t in (m.name, m.text, m.sig) if t]
        if not texts:
            return "unknown"  # a nullFlavor code with no text: nothing a pharmacist can read
        kinds = {placeholder(t) for t in texts}
        if "none" in kinds:
            return "none"
        if "unknown" in kinds:
            return "unknown"
        return ""

    @staticmethod
    def _med_activities(entry: Element) -> list[Element]:
        found = _first_with_template(entry, "substanceAdministration", TPL_MED_ACTIVITY)
        if found:
            return found
        # untemplated substanceAdministration straight under the entry (or an organizer)
        direct = entry.findall("substanceAdministration")
        direct += entry.findall("organizer/component/substanceAdministration")
        return [sa for sa in direct if not _has(sa, TPL_IMMUNIZATION)]

    # medications -----------------------------------------------------------------------------

    def medication(self, sa: Element, source: str) -> MedicationData:
        doc = self.doc
        m = MedicationData(source=source, negated=_negated(sa))
        material = sa.find("consumable/manufacturedProduct/manufacturedMaterial")
        code_el = material.find("code") if material is not None else None
        c = doc.code(code_el, (RXNORM, NDC, SNOMED))
        m.code, m.code_system = c["code"], c["system"]
        ingredients = []
        if material is not None:
            for ing in material.findall("ingredient"):
                ing_code = ing.find("ingredientSubstance/code")
                if ing_code is not None and ing_code.get("displayName"):
                    ingredients.append(_norm(ing_code.get("displayName")))
        material_name = _norm(material.findtext("name")) if material is not None else ""
        m.name = c["display"] or material_name or c["original"] or " / ".join(ingredients)
        sig_texts = [doc.ref_text(x.find("text")) for x in _relationship_targets(
            sa, "substanceAdministration", TPL_FREE_TEXT_SIG)]
        m.sig = "; ".join(t for t in sig_texts if t)
        sa_text = doc.ref_text(sa.find("text"))
        m.text = c["original"] or m.sig or sa_text or m.name
        if len(ingredients) <= 1:
            m.strength = strength_from_name(m.name) or strength_from_name(c["original"])
        m.dose = _pq(sa.find("doseQuantity"))
        unit_code = sa.find("administrationUnitCode")
        if m.dose and " " not in m.dose and unit_code is not None and unit_code.get("displayName"):
            m.dose = f"{m.dose} {unit_code.get('displayName')}"
        route = sa.find("routeCode")
        if not _is_null(route):
            label = _norm(route.get("displayName")) or doc.ref_text(route.find("originalText"))
            m.route = normalise_route(label, route.get("code", ""))
        elif route is not None and route.find("originalText") is not None:
            m.route = normalise_route(doc.ref_text(route.find("originalText")))
        self._times(sa, m)
        status = sa.find("statusCode")
        if status is not None and status.get("code"):
            m.status = MED_STATUS.get(status.get("code"), status.get("code"))
        if sa.find("precondition") is not None or any(el.tag == "asNeeded" for el in sa.iter()):
            m.as_needed = True
        for supply in _relationship_targets(sa, "supply", TPL_SUPPLY_ORDER):
            self._supply_order(supply, m)
            break
        free_text = m.sig or (sa_text if sa_text != m.name else "")
        if free_text:
            parsed = parse_directions(free_text)
            if not m.frequency:
                m.frequency = parsed.frequency_code
            if parsed.as_needed:
                m.as_needed = True
        if m.sig and (not m.name or not m.route):
            self._sig_assist(m)
        return m

    def _times(self, sa: Element, m: MedicationData) -> None:
        dates_done = False
        for et in sa.findall("effectiveTime"):
            if et.get("nullFlavor"):
                continue
            xsi_type = (et.get("xsi:type") or "").split(":")[-1].upper()
            if xsi_type in ("PIVL_TS", "SXPR_TS") or et.find("period") is not None:
                freq = self._pivl(et)
                if freq:
                    m.frequency = freq if not m.frequency else f"{m.frequency}; {freq}"
            elif xsi_type == "EIVL_TS" or et.find("event") is not None:
                event = et.find("event")
                code = (event.get("code") if event is not None else "") or ""
                label = meal_qualifier(code) or code.lower()
                if label == "hs" and m.frequency in ("", "daily"):
                    m.frequency = "qhs"
                elif label:
                    m.frequency = f"{m.frequency} {label}".strip() if m.frequency else label
            elif not dates_done:
                dates_done = True
                low, high = et.find("low"), et.find("high")
                if et.get("value"):
                    m.start_date = _as_date(parse_ts(et.get("value")))
                if low is not None and not low.get("nullFlavor"):
                    m.start_date = _as_date(parse_ts(low.get("value")))
                if high is not None and not high.get("nullFlavor"):
                    m.end_date = _as_date(parse_ts(high.get("value")))

    @staticmethod
    def _pivl(et: Element) -> str:
        """PIVL_TS → frequency code through the one sig parser (HL7 v3 Data Types R1 §PIVL_TS)."""
        period = et.find("period")
        if period is None or period.get("nullFlavor"):
            return ""
        low, high = period.find("low"), period.find("high")
        if not period.get("value") and low is not None and high is not None:
            # period as IVL_PQ (every 4 to 6 hours): a range of intervals
            unit = (low.get("unit") or "").strip()
            if unit == "h" and low.get("value") and high.get("value"):
                return frequency_from_period(low.get("value"), "h", period_max=high.get("value"))
            return ""
        try:
            value = Decimal(period.get("value", "").strip())
        except InvalidOperation:
            return ""
        if not value.is_finite() or value <= 0:
            return ""
        institution = (et.get("institutionSpecified") or "").lower() == "true"
        return frequency_from_period(value, (period.get("unit") or "").strip(), institution=institution)

    def _supply_order(self, supply: Element, m: MedicationData) -> None:
        qty = supply.find("quantity")
        if qty is not None and not qty.get("nullFlavor"):
            m.quantity = _pq(qty)
        repeat = supply.find("repeatNumber")
        if repeat is not None and repeat.get("value"):
            try:
                fills = int(Decimal(repeat.get("value")))
            except (InvalidOperation, ValueError, OverflowError):
                fills = None
            if fills is not None and fills >= 1:
                m.refills = fills - 1  # repeatNumber counts every fill, the first one included
        use = supply.find("expectedUseTime/width")
        if use is not None and (use.get("unit") or "d") == "d" and use.get("value"):
            try:
                m.days_supply = int(Decimal(use.get("value")))
            except (InvalidOperation, ValueError, OverflowError):
                pass
        name = _person_name(supply.find("author/assignedAuthor/assignedPerson/name"))
        if name:
            m.prescriber = name

    @staticmethod
    def _sig_assist(m: MedicationData) -> None:
        """Fill drug name / route from a free-text SIG with the SIG parser when it is available."""
        try:
            from pharmacy.interop import sig as sig_module  # optional helper, may not exist yet
        except ImportError:
            return
        try:
            parsed = sig_module.parse_medication_list(m.sig)
        except Exception:  # noqa: BLE001 - the parser is an optional helper; never fail the read
            return
        if not parsed:
            return
        first = parsed[0]
        if not m.name and getattr(first, "drug", ""):
            m.name = first.drug
        if not m.route and getattr(first, "route", ""):
            m.route = first.route
        if not m.strength and getattr(first, "strength", ""):
            unit = getattr(first, "unit", "") or ""
            m.strength = f"{first.strength} {unit}".strip()

    # allergies -------------------------------------------------------------------------------

    def allergies(self, entry: Element) -> None:
        for obs in _first_with_template(entry, "observation", TPL_ALLERGY_OBS):
            concern = entry.find("act")
            if concern is not None and not _has(concern, TPL_ALLERGY_CONCERN):
                concern = None
            self.allergy(obs, concern)

    def allergy(self, obs: Element, concern: Element | None) -> None:
        doc = self.doc
        negated = _negated(obs)
        value = obs.find("value")
        kind = doc.code(value)
        entity = obs.find("participant/participantRole/playingEntity")
        allergen_el = entity.find("code") if entity is not None else None
        allergen = doc.code(allergen_el, (RXNORM, SNOMED, NDC))
        entity_name = _norm(entity.findtext("name")) if entity is not None else ""
        # a coded allergen's display wins over the narrative: samples point originalText at the reaction
        if allergen["translated"]:
            substance = allergen["original"] or entity_name or allergen["display"]
        else:
            substance = allergen["display"] or allergen["original"] or entity_name
        generic = allergen["code"] in GENERIC_ALLERGENS
        no_allergen = not substance or generic
        if generic:
            substance = ""
        obs_text = doc.ref_text(obs.find("text"))
        scope = no_known_scope({kind["code"], allergen["code"]} - {""},
                               kind["display"] or kind["original"] or (substance if not allergen["code"] else ""))
        if negated and no_allergen and not scope:
            # negationInd on an Allergy Observation without a particular allergen: "no known allergy" of
            # the kind the value names (C-CDA R2.1 Allergy - Intolerance Observation, negationInd).
            food_env = ALLERGY_CATEGORY.get(kind["code"], "") in ("food", "environment")
            drug_kind = kind["code"] in DRUG_OR_ANY_KINDS or allergen["code"] in DRUG_ALLERGENS
            scope = "drug" if drug_kind or not food_env else "other"
        if scope and not (negated and not no_allergen):
            if scope == "drug":
                self.record.no_known_allergies = True
            else:
                self.record.warnings.append(
                    f"{kind['display'] or substance or 'no known allergy'!r} is not about drugs:"
                    " it does not mean no known drug allergies")
            return
        if not negated:
            label = substance or kind["display"] or kind["original"] or obs_text
            what = placeholder(label) if not allergen["code"] else ""
            if what or (obs.get("nullFlavor") and no_allergen):
                self.record.allergies_unknown = self.record.allergies_unknown or what != "none"
                self.record.warnings.append(f"allergy entry {label!r} is a placeholder, not an allergy")
                return
        if no_allergen:
            if obs.get("nullFlavor") or _is_null(value):
                self.record.allergies_unknown = True
                return  # "no information": neither an allergy nor NKA
            substance = ""
            if not kind["display"]:
                self.record.warnings.append("allergy observation without an allergen skipped")
                return
        a = AllergyData(
            substance=substance or kind["display"],
            code=allergen["code"],
            code_system=allergen["system"] if allergen["code"] else "",
            # an allergen coded in RxNorm/NDC is a drug whatever general kind the value names
            category="drug" if allergen["code"] and allergen["system"] in (RXNORM, NDC)
            else ALLERGY_CATEGORY.get(kind["code"], ""),
            negated=negated,
        )
        reactions = _first_with_template(obs, "observation", TPL_REACTION)
        if concern is not None and len(_first_with_template(concern, "observation", TPL_ALLERGY_OBS)) == 1:
            # some senders hang reactions (with their severities) on the concern act itself
            reactions += _relationship_targets(concern, "observation", TPL_REACTION)
        for reaction in reactions:
            rc = doc.code(reaction.find("value"))
            label = rc["display"] or rc["original"] or doc.ref_text(reaction.find("text"))
            if label and label not in a.reaction:
                a.reaction.append(label)
        # severity of each reaction, of the allergy itself, or (some senders) on the concern act
        severity_obs = [o for o in obs.iter("observation") if _has(o, TPL_SEVERITY)]
        for reaction in reactions:
            if not any(reaction is r for r in obs.iter("observation")):
                severity_obs += [o for o in reaction.iter("observation") if _has(o, TPL_SEVERITY)]
        if concern is not None:
            severity_obs += _relationship_targets(concern, "observation", TPL_SEVERITY)
        severities = [self._severity(sev) for sev in severity_obs]
        severities = [s for s in severities if s in SEVERITY_RANK]
        if severities:
            a.severity = max(severities, key=SEVERITY_RANK.__getitem__)
        # Criticality (potential for a future severe reaction) is not the severity of a reaction.
        for crit in _relationship_targets(obs, "observation", TPL_CRITICALITY):
            code = (crit.find("value").get("code") if crit.find("value") is not None else "") or ""
            a.criticality = CRITICALITY_CODES.get(code.upper(), "")
        for status_obs in _relationship_targets(obs, "observation", TPL_ALLERGY_STATUS):
            sc = doc.code(status_obs.find("value"))
            a.status = ALLERGY_STATUS_CODES.get(sc["code"], sc["display"].lower())
        if not a.status and concern is not None:
            code = _attr(concern, "statusCode", "code")
            a.status = {"active": "active", "completed": "resolved", "suspended": "inactive",
                        "aborted": "inactive"}.get(code, "")
        if a.status == "active" and concern is not None and _attr(concern, "statusCode", "code") == "completed" \
                and not _relationship_targets(obs, "observation", TPL_ALLERGY_STATUS):
            a.status = "resolved"
        high = obs.find("effectiveTime/high")
        if a.status in ("", "active") and high is not None and high.get("value") and not high.get("nullFlavor"):
            a.status = "resolved"  # the allergy has an end: no longer active
        self.record.allergies.append(a)

    def _severity(self, sev: Element) -> str:
        c = self.doc.code(sev.find("value"))
        if c["code"] in SEVERITY_CODES:
            return SEVERITY_CODES[c["code"]]
        label = (c["display"] or c["original"]).lower()
        for word in ("severe", "moderate", "mild"):
            if word in label:
                return word
        return ""

    # problems and results --------------------------------------------------------------------

    def problem(self, obs: Element, entry: Element) -> None:
        if _negated(obs):
            self.record.warnings.append("negated problem observation (no known problem) skipped")
            return
        c = self.doc.code(obs.find("value"), (ICD10CM, SNOMED))
        if not c["code"] and not c["display"] and not c["original"]:
            return
        low = obs.find("effectiveTime/low")
        status = ""
        for st in _relationship_targets(obs, "observation", TPL_PROBLEM_STATUS):
            status = self.doc.code(st.find("value"))["display"].lower()
        if not status:
            concern = entry.find("act")
            code = concern.find("statusCode") if concern is not None else None
            status = {"active": "active", "completed": "resolved", "suspended": "inactive"}.get(
                code.get("code", "") if code is not None else "", ""
            )
        self.record.problems.append(
            ProblemData(
                code=c["code"],
                code_system=c["system"] if c["code"] else "",
                description=c["original"] or c["display"],
                onset=_as_date(parse_ts(low.get("value"))) if low is not None else None,
                status=status,
            )
        )

    def result(self, obs: Element) -> None:
        if _negated(obs):
            return
        c = self.doc.code(obs.find("code"), (LOINC,))
        lab = LabResultData(code=c["code"], code_system=c["system"] if c["code"] else "",
                            name=c["display"] or c["original"])
        value = obs.find("value")
        if value is not None and not value.get("nullFlavor"):
            vtype = (value.get("xsi:type") or "").split(":")[-1].upper()
            if vtype in ("PQ", "IVL_PQ", "INT", "REAL") or value.get("unit"):
                lab.value = _num(value.get("value")) if value.get("value") else _pq(value)
                lab.unit = (value.get("unit") or "").strip()
                if lab.unit == "1":
                    lab.unit = ""
            elif vtype in ("CD", "CE", "CO", "CV"):
                vc = self.doc.code(value)
                lab.value = vc["display"] or vc["original"] or vc["code"]
            else:
                lab.value = _norm(value.get("value")) or self.doc.ref_text(value)
        interp = obs.find("interpretationCode")
        if interp is not None and not interp.get("nullFlavor"):
            lab.abnormal_flag = interp.get("code", "")
        rng = obs.find("referenceRange/observationRange")
        if rng is not None:
            rv = rng.find("value")
            lab.reference_range = self.doc.ref_text(rng.find("text")) or (_pq(rv) if rv is not None else "")
        et = obs.find("effectiveTime")
        if et is not None:
            low = et.find("low")
            lab.observed_at = parse_ts(et.get("value")) or parse_ts(_attr(low, "", "value"))
        self.record.lab_results.append(lab)

    # header ----------------------------------------------------------------------------------

    def header(self, root: Element) -> None:
        rec = self.record
        tids = _tids(root)
        code_el = root.find("code")
        doc_code = code_el.get("code", "") if code_el is not None else ""
        rec.message_type = "ClinicalDocument"
        for template, loinc, label in DOC_TYPES:
            if template in tids or doc_code == loinc:
                rec.message_type = label
                break
        ident = root.find("id")
        if ident is not None:
            rec.control_id = ident.get("extension") or ident.get("root", "")
        eff = parse_ts(_attr(root, "effectiveTime", "value"))
        rec.sent_at = eff if isinstance(eff, datetime) else None
        rec.sender = _norm(root.findtext(
            "custodian/assignedCustodian/representedCustodianOrganization/name"))
        versions = {t.get("extension", "") for t in root.findall("templateId")}
        rec.version = "C-CDA R2.1" if "2015-08-01" in versions else "CDA R2"
        self.patient(root.find("recordTarget/patientRole"))
        self.encounter(root.find("componentOf/encompassingEncounter"))

    def patient(self, role: Element | None) -> None:
        if role is None:
            return
        p = PatientData()
        for ident in role.findall("id"):
            if ident.get("nullFlavor"):
                continue
            root_oid = ident.get("root", "")
            value = ident.get("extension") or ""
            if not value:
                continue
            p.identifiers.append(Identifier(
                value=value,
                type=_ID_TYPES.get(root_oid, ""),
                assigning_authority=ident.get("assigningAuthorityName") or root_oid,
            ))
        patient = role.find("patient")
        if patient is not None:
            names = [n for n in patient.findall("name") if not n.get("nullFlavor")]
            legal = [n for n in names if "L" in (n.get("use") or "").split()]
            name = (legal or names or [None])[0]
            if name is not None:
                p.family = name_parts(f.text for f in name.findall("family"))
                p.given = name_parts(g.text for g in name.findall("given"))
                if not p.family and not p.given:
                    p.family = name_part(name.text)
            birth = patient.find("birthTime")
            if birth is not None:
                p.birth_date = _as_date(parse_ts(birth.get("value")))
            gender = patient.find("administrativeGenderCode")
            if gender is not None and gender.get("code"):
                p.sex = {"M": "M", "F": "F", "UN": "U", "U": "U"}.get(gender.get("code").upper(), "O")
        for tel in role.findall("telecom"):
            value = (tel.get("value") or "").strip()
            if value.lower().startswith("tel:"):
                p.phone = value[4:].strip()
                break
        addr = role.find("addr")
        if addr is not None and not addr.get("nullFlavor"):
            parts = [_norm(x.text) for x in addr.findall("streetAddressLine")]
            state, postal = _norm(addr.findtext("state")), _norm(addr.findtext("postalCode"))
            state_zip = " ".join(x for x in (state, postal) if x)
            parts += [_norm(addr.findtext("city")), state_zip, _norm(addr.findtext("country"))]
            p.address = ", ".join(x for x in parts if x)
        self.record.patient = p

    def encounter(self, enc: Element | None) -> None:
        if enc is None:
            return
        e = EncounterData()
        low, high = enc.find("effectiveTime/low"), enc.find("effectiveTime/high")
        et = enc.find("effectiveTime")
        if low is not None:
            e.admit_at = parse_ts(low.get("value"))
        elif et is not None:
            e.admit_at = parse_ts(et.get("value"))
        if high is not None:
            e.discharge_at = parse_ts(high.get("value"))
        code = enc.find("code")
        if code is not None and code.get("codeSystem") == "2.16.840.1.113883.5.4":
            e.patient_class = ENCOUNTER_CLASS.get(code.get("code", "").upper(), code.get("code", ""))
        e.facility = _norm(enc.findtext("location/healthCareFacility/location/name")) or _norm(
            enc.findtext("location/healthCareFacility/serviceProviderOrganization/name"))
        ident = enc.find("id")
        if ident is not None and not ident.get("nullFlavor"):
            e.visit_number = ident.get("extension") or ""
        self.record.encounter = e


def _entry_as_section(root: Element) -> Element | None:
    """A single entry cut out of a document (a Medication Activity, an Allergy Observation or Concern
    Act, a Problem Observation): read it as the section it belongs to."""
    kind = ""
    if root.tag == "substanceAdministration" and (_has(root, TPL_MED_ACTIVITY) or not _tids(root)):
        kind = "10160-0"
    elif root.tag in ("observation", "act") and (_has(root, TPL_ALLERGY_OBS) or _has(root, TPL_ALLERGY_CONCERN)):
        kind = "48765-2"
    elif root.tag in ("observation", "act") and _has(root, TPL_PROBLEM_OBS):
        kind = "11450-4"
    if not kind:
        return None
    section = Element("section")
    code = Element("code", {"code": kind})
    entry = Element("entry")
    entry.append(root)
    section.extend([code, entry])
    return section


def read_ccda(data: bytes | str) -> ClinicalRecord:
    """Read a C-CDA document (CCD, Discharge/Transfer Summary, H&P …) or a bare section fragment.

    Raises ``ClinicalParseError`` for XML that is not well-formed, carries a DTD/entities, or holds
    neither a ClinicalDocument nor a recognised section.
    """
    record = ClinicalRecord(format="ccda")
    root = _parse(data, record.warnings)
    _strip_namespaces(root)
    if root.tag == "ccdaFragment" and len(root) == 1:
        root = root[0]  # the wrapper added to bind undeclared prefixes
    doc = _Doc(root)
    reader = _CcdaReader(doc, record)
    if root.tag == "ClinicalDocument":
        reader.header(root)
        sections = list(root.iter("section"))
        reader.read_sections(sections)
        body = root.find("component/nonXMLBody")
        if body is not None and not sections:
            media = _attr(body, "text", "mediaType") or "unstated media type"
            record.warnings.append(
                f"the document body is a nonXMLBody ({media}): no structured sections, so no medications,"
                " allergies or problems were read; the list is unknown")
            record.medications_unknown = record.allergies_unknown = True
        elif not sections:
            record.warnings.append("the document has no structured sections")
            record.medications_unknown = record.allergies_unknown = True
        finish_allergies(record)
        return record
    documents = list(root.iter("ClinicalDocument"))
    if documents:
        raise ClinicalParseError(f"ClinicalDocument must be the root element, found it inside <{root.tag}>")
    sections = list(root.iter("section"))
    record.message_type = "Fragment"
    if not sections:
        wrapped = _entry_as_section(root)
        if wrapped is None:
            body = root if root.tag == "nonXMLBody" else root.find("nonXMLBody")
            if body is not None:
                record.warnings.append(
                    f"a nonXMLBody fragment ({_attr(body, 'text', 'mediaType') or 'unstated media type'}):"
                    " no structured sections; the lists are unknown")
                record.medications_unknown = record.allergies_unknown = True
                return record
            raise ClinicalParseError(f"not a C-CDA document or section: root element <{root.tag}>")
        sections = [wrapped]
    recognised = reader.read_sections(sections)
    finish_allergies(record)
    if not recognised:
        codes = sorted({_attr(s, "code", "code") for s in sections} - {""})
        record.warnings.append(
            "no medication, allergy, problem or result section found"
            + (f" (section codes: {', '.join(codes)})" if codes else "")
        )
    return record
