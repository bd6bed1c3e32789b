"""FHIR R4 (4.0.1) JSON reader and outbound builders.

Pure: no Django. ``read_fhir`` turns a Bundle (any type) or one clinical resource into a
``ClinicalRecord``. Everything is read from the plain JSON dict so that R4 content the R4B models of
``fhir.resources`` reject (R4-only elements or resource types) is still read; the R4B models are
used to *validate* (a failure becomes a warning on the record, never a rejection). Input that is not
FHIR at all — not JSON, no ``resourceType``, an entry without a resource type, an unsupported
top-level resource — raises ``ClinicalParseError`` naming the element, e.g.
``Bundle.entry[3].resource: missing resourceType``.

The small text helpers (``strength_from_name``, ``normalise_route``) are shared with the C-CDA reader;
frequencies (Timing and dosage text) are read by the one sig parser, ``pharmacy.interop.sig``.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pharmacy.interop.clinical import (
    CVX,
    ICD10CM,
    LOCAL,
    LOINC,
    NDC,
    NO_KNOWN_ALLERGY_CODES,
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
from pharmacy.interop.fhir_strict import check_resource
from pharmacy.interop.sig import frequency_from_timing, parse_directions

__all__ = [
    "read_fhir",
    "operation_outcome",
    "build_medication_dispense",
    "build_communication",
    "code_system_name",
    "strength_from_name",
    "normalise_route",
    "NKA_SNOMED_CODES",
]

# --------------------------------------------------------------------------------------------
# Code systems
# --------------------------------------------------------------------------------------------

SYSTEM_URIS: dict[str, str] = {
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "http://hl7.org/fhir/sid/ndc": NDC,
    "urn:oid:2.16.840.1.113883.6.69": NDC,
    "http://snomed.info/sct": SNOMED,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "http://loinc.org": LOINC,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "http://hl7.org/fhir/sid/cvx": CVX,
    "urn:oid:2.16.840.1.113883.12.292": CVX,
}
_SYSTEM_TO_URI = {
    RXNORM: "http://www.nlm.nih.gov/research/umls/rxnorm",
    NDC: "http://hl7.org/fhir/sid/ndc",
    SNOMED: "http://snomed.info/sct",
    LOINC: "http://loinc.org",
    ICD10CM: "http://hl7.org/fhir/sid/icd-10-cm",
    CVX: "http://hl7.org/fhir/sid/cvx",
}

# SNOMED CT "no known …" situations. They state an absence; they are not allergy entries. Only the
# drug-inclusive ones (clinical.NKDA_CODES) mean no known drug allergies.
NKA_SNOMED_CODES = NO_KNOWN_ALLERGY_CODES
# IPS "absent and unknown data" codes (http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips).
IPS_ABSENT_SYSTEM = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
_IPS_UNKNOWN = frozenset({"no-allergy-info", "no-medication-info", "no-problem-info", "no-drug-allergy-info"})
_IPS_NKDA = frozenset({"no-known-allergies", "no-known-medication-allergies", "no-known-drug-allergies"})
_IPS_NOT_DRUG = frozenset({"no-known-environmental-allergies", "no-known-food-allergies",
                           "no-known-latex-allergies"})
_IPS_NO_MEDS = frozenset({"no-known-medications"})
# SNOMED CT situations used as a medication code to say "no medication"
_NO_MEDICATION_CODES = frozenset({"787481004", "182849000", "408350003"})

CLINICAL_RESOURCE_TYPES = (
    "Patient",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "Medication",
    "AllergyIntolerance",
    "Condition",
    "Observation",
    "Encounter",
    "List",
)
_MED_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationDispense")


def code_system_name(system: Any) -> str:
    """FHIR system URI (or urn:oid) → our short name; unknown systems are ``local``."""
    if not isinstance(system, str) or not system.strip():
        return LOCAL
    return SYSTEM_URIS.get(system.strip(), LOCAL)


# --------------------------------------------------------------------------------------------
# Text helpers shared with the C-CDA reader
# --------------------------------------------------------------------------------------------

_UNIT_CANON = {
    "mg": "mg", "mcg": "mcg", "µg": "mcg", "ug": "mcg", "g": "g", "gm": "g", "meq": "mEq",
    "unit": "unit", "units": "unit", "u": "unit", "iu": "IU", "%": "%", "ml": "mL", "l": "L",
    "actuat": "actuat", "tab": "tab", "mmol": "mmol", "mg/ml": "mg/mL",
}
_STRENGTH_RE = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)\s*(mcg|µg|ug|mg|gm|g|meq|units?|iu|u|mmol|%)(?![a-z])"
    r"(?:\s*/\s*(\d+(?:\.\d+)?)?\s*(ml|l|actuat|tab|g)(?![a-z]))?",
    re.IGNORECASE,
)


def _canon_unit(unit: str) -> str:
    return _UNIT_CANON.get(unit.strip().lower(), unit.strip())


def strength_from_name(name: str) -> str:
    """Strength written in a drug name: "lisinopril 10 MG Oral Tablet" → "10 mg".

    Several strengths (combination products) are joined with " / ": "5 mg / 500 mg".
    """
    if not name:
        return ""
    found: list[str] = []
    for m in _STRENGTH_RE.finditer(name):
        value, unit, den_value, den_unit = m.groups()
        if value.startswith("."):
            value = "0" + value
        unit = _canon_unit(unit)
        text = f"{value}{unit}" if unit == "%" else f"{value} {unit}"
        if den_unit:
            den = _canon_unit(den_unit)
            text += f"/{den_value} {den}" if den_value and den_value != "1" else f"/{den}"
        if text not in found:
            found.append(text)
    return " / ".join(found)


_ROUTE_BY_CODE = {
    # SNOMED CT route codes seen in FHIR examples
    "26643006": "oral", "260548002": "oral", "47625008": "intravenous", "255560000": "intravenous",
    "263887005": "subcutaneous", "34206005": "subcutaneous", "6064005": "topical", "16857009": "vaginal",
    "78421000": "intramuscular", "37161004": "rectal", "46713006": "nasal", "37839007": "sublingual",
    "45890007": "transdermal",
    # NCI Thesaurus (FDA route of administration) codes used by C-CDA
    "C38288": "oral", "C38276": "intravenous", "C38299": "subcutaneous", "C28161": "intramuscular",
    "C38216": "inhalation", "C38284": "nasal", "C38304": "topical", "C38305": "transdermal",
    "C38300": "sublingual", "C38313": "vaginal", "C38295": "rectal", "C38287": "ophthalmic",
    "C38192": "auricular", "C38289": "oropharyngeal",
}
_ROUTE_STRIP_RE = re.compile(
    r"\((?:qualifier value|route)\)|\broute of administration\b|\badministration of treatment\b|\broute\b",
    re.IGNORECASE,
)


def normalise_route(display: str = "", code: str = "") -> str:
    """"Oral Route" / "Oral Route of Administration" → "oral"; falls back to known codes."""
    text = _ROUTE_STRIP_RE.sub(" ", display or "")
    text = " ".join(text.split()).strip(" ,;-").lower()
    if text:
        return text
    return _ROUTE_BY_CODE.get((code or "").strip(), "")


# --------------------------------------------------------------------------------------------
# Small value helpers
# --------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _num(value: Any) -> str:
    """12 → "12", 12.0 → "12", 0.5 → "0.5"."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, (int, float, Decimal)):
        dec = Decimal(str(value))
        if not dec.is_finite():
            return ""
        if dec == dec.to_integral_value():
            return str(int(dec))
        return format(dec.normalize(), "f")
    return _s(value)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        dec = Decimal(str(value))
    except Exception:  # noqa: BLE001 - anything not numeric is "absent"
        return None
    if not dec.is_finite() or dec != dec.to_integral_value():
        return None
    return int(dec)


def _quantity(q: Any, *, canon: bool = False) -> str:
    q = _d(q)
    value = _num(q.get("value"))
    unit = _s(q.get("unit")) or _s(q.get("code"))
    if canon and unit:
        unit = _canon_unit(unit)
    if value and unit and unit != "1":
        return f"{value} {unit}"
    return value


def _ratio_strength(ratio: Any) -> str:
    ratio = _d(ratio)
    num = _quantity(ratio.get("numerator"), canon=True)
    if not num:
        return ""
    den = _d(ratio.get("denominator"))
    den_value = _num(den.get("value"))
    den_unit = _canon_unit(_s(den.get("unit")) or _s(den.get("code")))
    if not den_unit:
        return num
    if den_value in ("", "1"):
        # per one tablet/capsule is just the amount; per one mL is a concentration
        return f"{num}/{den_unit}" if den_unit in ("mL", "L", "actuat", "g") else num
    return f"{num}/{den_value} {den_unit}"


def parse_fhir_date(value: Any) -> date | None:
    """FHIR date/dateTime → date; partial dates (YYYY, YYYY-MM) are imprecise and give None."""
    text = _s(value)
    if len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_fhir_datetime(value: Any) -> datetime | date | None:
    """FHIR dateTime/instant → datetime (date when no time is given, None when partial)."""
    text = _s(value)
    if len(text) <= 10:
        return parse_fhir_date(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return parse_fhir_date(text)


def _codings(cc: Any) -> list[dict]:
    return [c for c in _as_list(_d(cc).get("coding")) if isinstance(c, dict)]


def _best_coding(cc: Any, prefer: tuple[str, ...]) -> dict:
    codings = [c for c in _codings(cc) if _s(c.get("code"))]
    for name in prefer:
        for c in codings:
            if code_system_name(c.get("system")) == name:
                return c
    return codings[0] if codings else {}


def _cc_text(cc: Any) -> str:
    cc = _d(cc)
    text = _s(cc.get("text"))
    if text:
        return text
    for c in _codings(cc):
        if _s(c.get("display")):
            return _s(c.get("display"))
    return ""


def _cc_display(cc: Any, prefer: tuple[str, ...] = ()) -> str:
    best = _best_coding(cc, prefer)
    if _s(best.get("display")):
        return _s(best.get("display"))
    return _cc_text(cc)


def _cc_code(cc: Any) -> str:
    for c in _codings(cc):
        if _s(c.get("code")):
            return _s(c.get("code"))
    if isinstance(cc, str):  # STU3-style plain code
        return cc.strip()
    return ""


def _human_name(name: Any) -> tuple[str, str]:
    name = _d(name)
    family = name_part(_s(name.get("family")))
    if isinstance(name.get("family"), list):  # STU2 style
        family = name_parts(_s(f) for f in name["family"])
    given = name_parts(_s(g) for g in _as_list(name.get("given")))
    if not family and not given:
        family = name_part(_s(name.get("text")))
    return family, given


def _name_display(name: Any) -> str:
    family, given = _human_name(name)
    return " ".join(p for p in (given, family) if p)


_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
def _join_distinct(values: list[str], sep: str = "; ") -> str:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return sep.join(out)


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _load(data: bytes | str | dict) -> dict:
    if isinstance(data, dict):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        encoding, _skip = unicode_encoding(raw)
        if encoding:
            # JSON in UTF-8 with a BOM, UTF-16 or UTF-32 (RFC 8259 §8.1 tolerates a BOM; RFC 4627 §3)
            try:
                text = decode_unicode(raw) or ""
            except UnicodeDecodeError as exc:
                raise ClinicalParseError(f"not valid {encoding.upper()} text: {exc}") from exc
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ClinicalParseError(
                    f"FHIR JSON must be UTF-8: undecodable byte at offset {exc.start}"
                ) from exc
    elif isinstance(data, str):
        text = data.lstrip("\ufeff")
    else:
        raise ClinicalParseError(f"cannot read FHIR from {type(data).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ClinicalParseError("empty input: expected a FHIR JSON resource")
    if stripped.startswith("<"):
        raise ClinicalParseError("FHIR XML is not supported: send FHIR JSON")
    try:
        value = json.loads(stripped, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ClinicalParseError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise ClinicalParseError(f"not a FHIR resource: top-level JSON is {kind}, expected an object")
    return value


def _resource_type(resource: Any, path: str) -> str:
    if not isinstance(resource, dict):
        raise ClinicalParseError(f"{path}: expected a JSON object, got {type(resource).__name__}")
    rt = resource.get("resourceType")
    if rt is None:
        if path == "":
            raise ClinicalParseError("not a FHIR resource: missing resourceType")
        raise ClinicalParseError(f"{path}: missing resourceType")
    if not isinstance(rt, str) or not re.fullmatch(r"[A-Z][A-Za-z]+", rt):
        raise ClinicalParseError(f"{path}.resourceType: invalid value {rt!r}")
    return rt


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _validate_r4b(resource: dict) -> str:
    """Validate with the fhir.resources R4B models; return "" or a one-line problem summary."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:  # pragma: no cover - dependency is installed in this project
        return ""
    rt = resource.get("resourceType")
    try:
        model = get_fhir_model_class(rt)
    except (KeyError, ValueError):
        return f"resourceType {rt} is not an R4B resource"
    try:
        model.model_validate(_to_jsonable(resource))
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError, KeyError for unknown nested types
        errors = getattr(exc, "errors", None)
        if callable(errors):
            try:
                items = errors()
            except Exception:  # noqa: BLE001
                items = []
            if items:
                first = items[0]
                loc = ".".join(str(p) for p in first.get("loc", ()))
                more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
                return f"{rt}.{loc}: {first.get('msg', '')}{more}"
        return f"{rt}: {type(exc).__name__}: {exc}"[:300]
    return ""


class _FhirReader:
    def __init__(self) -> None:
        self.record = ClinicalRecord(format="fhir", version="R4")
        # reference key → resource
        self.index: dict[str, dict] = {}
        # (resource, path) in document order for everything in the payload (nested bundles flattened)
        self.resources: list[tuple[dict, str]] = []
        self.processed: set[int] = set()
        self.top: dict | None = None
        # medications whose name is a list of compound ingredients: no strength is guessed from it
        self.compounds: set[int] = set()
        self.current: dict = {}

    # ---- collection -------------------------------------------------------------------------

    def collect(self, resource: dict, path: str) -> None:
        rt = _resource_type(resource, path)
        if rt == "Bundle":
            entries = resource.get("entry")
            if entries is not None and not isinstance(entries, list):
                raise ClinicalParseError(f"{path}.entry: expected an array")
            for i, entry in enumerate(entries or []):
                epath = f"{path}.entry[{i}]"
                if not isinstance(entry, dict):
                    raise ClinicalParseError(f"{epath}: expected a JSON object")
                if "resource" not in entry:
                    continue  # request-only entries (batch GET, DELETE) carry no resource
                child = entry["resource"]
                child_path = f"{epath}.resource"
                crt = _resource_type(child, child_path)
                self._index(child, crt, _s(entry.get("fullUrl")))
                self.collect(child, child_path)
            return
        check_resource(resource, path)
        self.resources.append((resource, path))

    def _index(self, resource: dict, rt: str, full_url: str) -> None:
        rid = _s(resource.get("id"))
        if full_url:
            self.index.setdefault(full_url, resource)
        if rid:
            self.index.setdefault(f"{rt}/{rid}", resource)

    def resolve(self, ref: Any, owner: dict | None) -> dict | None:
        reference = _s(_d(ref).get("reference"))
        if not reference:
            return None
        if reference.startswith("#"):
            for c in _as_list(_d(owner).get("contained")):
                if isinstance(c, dict) and _s(c.get("id")) == reference[1:]:
                    return c
            return None
        if reference in self.index:
            return self.index[reference]
        ref = re.sub(r"/_history/[^/]+$", "", reference)
        m = re.search(r"([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$", ref)
        if m and m.group(1) in self.index:
            return self.index[m.group(1)]
        return None

    # ---- processing -------------------------------------------------------------------------

    def process_all(self) -> None:
        order = ("Patient", "Encounter", *_MED_TYPES, "Medication", "AllergyIntolerance", "Condition",
                 "Observation", "List")
        for rt_wanted in order:
            for resource, path in self.resources:
                if resource.get("resourceType") == rt_wanted:
                    self.process(resource, path, owner=None)

    def process(self, resource: dict, path: str, owner: dict | None) -> None:
        if id(resource) in self.processed:
            return
        self.processed.add(id(resource))
        rt = resource.get("resourceType")
        handler = getattr(self, f"_read_{rt}", None)
        if handler is None:
            return
        self.current = resource
        handler(resource, path, owner)

    @staticmethod
    def _label(resource: dict) -> str:
        rid = _s(resource.get("id"))
        rt = _s(resource.get("resourceType"))
        return f"{rt}/{rid}" if rid else rt

    # Patient ---------------------------------------------------------------------------------

    def _read_Patient(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        if self.record.patient is not None:
            warning = "several Patient resources: the first one is used"
            if warning not in self.record.warnings:
                self.record.warnings.append(warning)
            return
        p = PatientData()
        names = [n for n in _as_list(res.get("name")) if isinstance(n, dict)]
        chosen = None
        for use in ("official", "usual", None):
            for n in names:
                if (use is None or n.get("use") == use) and any(_human_name(n)):
                    chosen = n
                    break
            if chosen:
                break
        if chosen:
            p.family, p.given = _human_name(chosen)
        p.birth_date = parse_fhir_date(res.get("birthDate"))
        p.sex = _SEX.get(_s(res.get("gender")).lower(), "")
        for ident in _as_list(res.get("identifier")):
            ident = _d(ident)
            value = _s(ident.get("value"))
            if not value:
                continue
            id_type = _cc_code(ident.get("type")) or _s(_d(ident.get("type")).get("text"))
            authority = _s(_d(ident.get("assigner")).get("display")) or _s(ident.get("system"))
            p.identifiers.append(Identifier(value=value, type=id_type, assigning_authority=authority))
        phones = [_d(t) for t in _as_list(res.get("telecom")) if _d(t).get("system") == "phone"]
        phones = [t for t in phones if _s(t.get("value")) and t.get("use") != "old"]
        if phones:
            p.phone = _s(phones[0].get("value"))
        addresses = [_d(a) for a in _as_list(res.get("address")) if _d(a).get("use") != "old"]
        if addresses:
            a = addresses[0]
            if _s(a.get("text")):
                p.address = _s(a.get("text"))
            else:
                parts = [_s(x) for x in _as_list(a.get("line"))]
                state_zip = " ".join(x for x in (_s(a.get("state")), _s(a.get("postalCode"))) if x)
                parts += [_s(a.get("city")), state_zip]
                parts.append(_s(a.get("country")))
                p.address = ", ".join(x for x in parts if x)
        self.record.patient = p

    # Medications -----------------------------------------------------------------------------

    def _medication_from_resource(self, med: dict, m: MedicationData) -> None:
        code_cc = med.get("code")
        best = _best_coding(code_cc, (RXNORM, NDC, SNOMED))
        if best:
            m.code = _s(best.get("code"))
            m.code_system = code_system_name(best.get("system"))
        m.name = _cc_display(code_cc, (RXNORM, NDC, SNOMED))
        if not m.text:
            m.text = _cc_text(code_cc)
        strengths: list[str] = []
        ingredient_names: list[str] = []
        ingredients = [_d(i) for i in _as_list(med.get("ingredient"))]
        for ing in ingredients:
            item_name = _cc_display(ing.get("itemCodeableConcept"), (RXNORM, SNOMED, NDC))
            if not item_name and ing.get("itemReference"):
                target = self.resolve(ing.get("itemReference"), med)
                item_name = _cc_display(_d(target).get("code"), (RXNORM, SNOMED, NDC)) or _s(
                    _d(ing.get("itemReference")).get("display")
                )
            if item_name:
                ingredient_names.append(item_name)
            strength = _ratio_strength(ing.get("strength"))
            if strength:
                strengths.append(strength)
        if not m.name and ingredient_names:
            m.name = " / ".join(ingredient_names)
            if len(ingredient_names) > 1:
                self.compounds.add(id(m))
            if not m.code and len(ingredients) == 1:
                only = _best_coding(ingredients[0].get("itemCodeableConcept"), (RXNORM, NDC, SNOMED))
                if only:
                    m.code = _s(only.get("code"))
                    m.code_system = code_system_name(only.get("system"))
        if strengths:
            m.strength = " / ".join(strengths)

    def _medication(self, res: dict, m: MedicationData) -> None:
        """Fill the drug fields from medication[x] (resolving references)."""
        cc = res.get("medicationCodeableConcept")
        ref = res.get("medicationReference")
        if cc:
            best = _best_coding(cc, (RXNORM, NDC, SNOMED))
            m.text = _cc_text(cc)
            m.name = _cc_display(cc, (RXNORM, NDC, SNOMED))
            if best:
                m.code = _s(best.get("code"))
                m.code_system = code_system_name(best.get("system"))
        elif ref:
            m.text = _s(_d(ref).get("display"))
            target = self.resolve(ref, res)
            if target is not None and target.get("resourceType") == "Medication":
                self._medication_from_resource(target, m)
            else:
                reference = _s(_d(ref).get("reference"))
                if reference:
                    self.record.warnings.append(
                        f"{self._label(res)}: medicationReference {reference} not found in the payload"
                    )
        if not m.text:
            m.text = m.name

    def _dosage(self, dosages: list, m: MedicationData) -> None:
        doses, routes, freqs, texts = [], [], [], []
        for dosage in dosages:
            dosage = _d(dosage)
            if dosage.get("asNeededBoolean") is True or dosage.get("asNeededCodeableConcept"):
                m.as_needed = True
            text = _s(dosage.get("text"))
            texts.append(text)
            for dr in _as_list(dosage.get("doseAndRate")):
                dr = _d(dr)
                if dr.get("doseQuantity"):
                    doses.append(_quantity(dr["doseQuantity"]))
                elif dr.get("doseRange"):
                    low_q, high_q = _d(_d(dr["doseRange"]).get("low")), _d(_d(dr["doseRange"]).get("high"))
                    low_v, high = _num(low_q.get("value")), _quantity(high_q)
                    doses.append(f"{low_v}-{high}" if low_v and high else (_quantity(low_q) or high))
            route = dosage.get("route")
            if route:
                best = _best_coding(route, (SNOMED,))
                label = _cc_text(route) or _s(best.get("display"))
                routes.append(normalise_route(label, _s(best.get("code"))))
            freq = frequency_from_timing(dosage.get("timing"))
            if text:
                parsed = parse_directions(text)
                if parsed.as_needed:
                    m.as_needed = True
                if not freq:
                    freq = parsed.frequency_code
                    if not freq:
                        self.record.warnings.append(
                            f"{self._label(self.current)}: directions not read, kept as written: {text!r}"
                        )
            freqs.append(freq)
        m.dose = _join_distinct(doses)
        m.route = _join_distinct(routes)
        m.frequency = _join_distinct(freqs)
        m.sig = _join_distinct(texts)
        if not m.as_needed and re.search(r"\b(as needed|prn)\b", m.sig, re.IGNORECASE):
            m.as_needed = True
        if not m.strength and id(m) not in self.compounds:
            m.strength = strength_from_name(m.name) or strength_from_name(m.text)
        if not m.strength and len(doses) == 1 and id(m) not in self.compounds:
            # last resort: a dose in mass/unit terms is the strength the prescriber meant
            dose_unit = doses[0].split(" ", 1)[1] if " " in doses[0] else ""
            if _canon_unit(dose_unit) in ("mg", "mcg", "g", "mEq", "unit", "IU", "mmol"):
                m.strength = f"{doses[0].split(' ', 1)[0]} {_canon_unit(dose_unit)}"

    def _prescriber(self, ref: Any, owner: dict) -> str:
        display = _s(_d(ref).get("display"))
        if display:
            return display
        target = self.resolve(ref, owner)
        if target is not None:
            if target.get("resourceType") in ("Practitioner", "RelatedPerson", "Patient"):
                for n in _as_list(target.get("name")):
                    text = _name_display(n)
                    if text:
                        return text
            if target.get("resourceType") == "Organization":
                return _s(target.get("name"))
        return ""

    def _add_med(self, m: MedicationData) -> None:
        codes = {m.code} if m.code else set()
        if codes & (_IPS_UNKNOWN | _IPS_NO_MEDS | _NO_MEDICATION_CODES) or (
                not m.code and placeholder(m.text or m.name)):
            unknown = bool(codes & _IPS_UNKNOWN) or (not m.code and placeholder(m.text or m.name) == "unknown")
            if unknown:
                self.record.medications_unknown = True
            self.record.warnings.append(
                f"{m.source}: {m.text or m.name or m.code!r} is a placeholder "
                f"({'no information' if unknown else 'no medications'}), not a medication")
            return
        self.record.medications.append(m)

    def _read_MedicationRequest(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        m = MedicationData(source=self._label(res), status=_s(res.get("status")))
        self._medication(res, m)
        self._dosage(_as_list(res.get("dosageInstruction")), m)
        m.start_date = parse_fhir_date(res.get("authoredOn"))
        m.prescriber = self._prescriber(res.get("requester"), res)
        if res.get("doNotPerform") is True:
            m.negated = True
        disp = _d(res.get("dispenseRequest"))
        m.quantity = _quantity(disp.get("quantity"))
        m.days_supply = _days(disp.get("expectedSupplyDuration"))
        m.refills = _int(disp.get("numberOfRepeatsAllowed"))
        self._add_med(m)

    def _read_MedicationStatement(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        m = MedicationData(source=self._label(res), status=_s(res.get("status")))
        self._medication(res, m)
        self._dosage(_as_list(res.get("dosage")), m)
        if res.get("effectiveDateTime"):
            m.start_date = parse_fhir_date(res.get("effectiveDateTime"))
        elif res.get("effectivePeriod"):
            m.start_date = parse_fhir_date(_d(res["effectivePeriod"]).get("start"))
            m.end_date = parse_fhir_date(_d(res["effectivePeriod"]).get("end"))
        if m.status == "not-taken":
            m.negated = True
        self._add_med(m)

    def _read_MedicationDispense(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        m = MedicationData(source=self._label(res), status=_s(res.get("status")))
        self._medication(res, m)
        self._dosage(_as_list(res.get("dosageInstruction")), m)
        m.start_date = parse_fhir_date(res.get("whenHandedOver")) or parse_fhir_date(res.get("whenPrepared"))
        m.quantity = _quantity(res.get("quantity"))
        m.days_supply = _days(res.get("daysSupply"))
        for auth in _as_list(res.get("authorizingPrescription")):
            target = self.resolve(auth, res)
            if target is not None and target.get("resourceType") == "MedicationRequest":
                m.prescriber = self._prescriber(target.get("requester"), target)
                if m.prescriber:
                    break
        if m.status == "declined":
            m.negated = True
        self._add_med(m)

    def _read_Medication(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        # Inside a Bundle a Medication only describes a product referenced by a request/statement.
        if self.top is not res:
            return
        m = MedicationData(source=self._label(res), status=_s(res.get("status")))
        self._medication_from_resource(res, m)
        if not m.text:
            m.text = m.name
        if not m.strength and id(m) not in self.compounds:
            m.strength = strength_from_name(m.name)
        self._add_med(m)


    # Allergies -------------------------------------------------------------------------------

    def _read_AllergyIntolerance(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        verification = _cc_code(res.get("verificationStatus")) or _s(res.get("verificationStatus"))
        clinical = _cc_code(res.get("clinicalStatus")) or _s(res.get("clinicalStatus"))
        if verification == "entered-in-error":
            self.record.warnings.append(f"{self._label(res)}: entered-in-error allergy skipped")
            return
        code_cc = res.get("code") or res.get("substance")
        codes = {_s(c.get("code")) for c in _codings(code_cc)}
        text = _cc_text(code_cc).strip()
        categories = [_s(c) for c in _as_list(res.get("category"))]
        if codes & _IPS_UNKNOWN or (not codes and placeholder(text) == "unknown"):
            self.record.allergies_unknown = True
            self.record.warnings.append(f"{self._label(res)}: no allergy information (unknown, not NKDA)")
            return
        scope = "drug" if codes & _IPS_NKDA else "other" if codes & _IPS_NOT_DRUG else no_known_scope(
            codes, text if not codes or codes & NO_KNOWN_ALLERGY_CODES else "")
        if scope:
            inactive = verification in ("refuted", "entered-in-error") or clinical in ("inactive", "resolved")
            if scope == "drug" and categories and not ({"medication", "biologic"} & set(categories)):
                scope = "other"  # e.g. 716186003 with category food only
            if scope == "drug" and not inactive:
                self.record.no_known_allergies = True
            elif scope == "other":
                self.record.warnings.append(
                    f"{self._label(res)}: {text or 'no known allergy'!r} is not about drugs: not NKDA")
            return
        a = AllergyData()
        best = _best_coding(code_cc, (RXNORM, SNOMED, NDC))
        a.substance = _cc_text(code_cc)
        if not a.substance:
            for reaction in _as_list(res.get("reaction")):
                a.substance = _cc_text(_d(reaction).get("substance"))
                if a.substance:
                    best = _best_coding(_d(reaction).get("substance"), (RXNORM, SNOMED, NDC))
                    break
        if best:
            a.code = _s(best.get("code"))
            a.code_system = code_system_name(best.get("system"))
        if categories:
            a.category = _ALLERGY_CATEGORY.get(categories[0], "other")
        severities = []
        for reaction in _as_list(res.get("reaction")):
            reaction = _d(reaction)
            for man in _as_list(reaction.get("manifestation")):
                # R4: CodeableConcept; R5: CodeableReference {concept: …}
                man = _d(man)
                label = _cc_text(man.get("concept") if "concept" in man else man)
                if label and label not in a.reaction:
                    a.reaction.append(label)
            if _s(reaction.get("severity")):
                severities.append(_s(reaction.get("severity")))
        rank = {"mild": 1, "moderate": 2, "severe": 3}
        severities = [s for s in severities if s in rank]
        if severities:
            a.severity = max(severities, key=rank.__getitem__)
        # criticality is the risk of a future critical reaction, not a reaction's severity (FHIR R4
        # AllergyIntolerance.criticality vs reaction.severity)
        a.criticality = _s(res.get("criticality"))
        a.status = clinical
        a.negated = verification == "refuted"
        self.record.allergies.append(a)

    # Problems, labs, encounters ---------------------------------------------------------------

    def _read_Condition(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        verification = _cc_code(res.get("verificationStatus"))
        if verification in ("refuted", "entered-in-error"):
            return
        code_cc = res.get("code")
        best = _best_coding(code_cc, (ICD10CM, SNOMED))
        self.record.problems.append(
            ProblemData(
                code=_s(best.get("code")),
                code_system=code_system_name(best.get("system")) if best else "",
                description=_cc_text(code_cc) or _s(best.get("display")),
                onset=parse_fhir_date(res.get("onsetDateTime"))
                or parse_fhir_date(_d(res.get("onsetPeriod")).get("start")),
                status=_cc_code(res.get("clinicalStatus")) or _s(res.get("clinicalStatus")),
            )
        )

    def _read_Observation(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        if _s(res.get("status")) in ("entered-in-error", "cancelled"):
            return
        code_cc = res.get("code")
        best = _best_coding(code_cc, (LOINC,))
        lab = LabResultData(
            code=_s(best.get("code")),
            code_system=code_system_name(best.get("system")) if best else "",
            name=_cc_text(code_cc),
        )
        lab.value, lab.unit = _observation_value(res)
        if not lab.value:
            parts = []
            for comp in _as_list(res.get("component")):
                value, unit = _observation_value(_d(comp))
                if value:
                    parts.append(f"{_cc_text(_d(comp).get('code'))}: {value} {unit}".strip())
            lab.value = "; ".join(parts)
        ranges = [_d(r) for r in _as_list(res.get("referenceRange"))]
        if ranges:
            r = ranges[0]
            low, high = _quantity(r.get("low")), _quantity(r.get("high"))
            low_v = _num(_d(r.get("low")).get("value"))
            if _s(r.get("text")):
                lab.reference_range = _s(r.get("text"))
            elif low_v and high:
                lab.reference_range = f"{low_v}-{high}"
            elif low or high:
                lab.reference_range = f">={low}" if low else f"<={high}"
        interp = _as_list(res.get("interpretation"))
        if interp:
            lab.abnormal_flag = _cc_code(interp[0]) or _cc_text(interp[0])
        lab.observed_at = (
            parse_fhir_datetime(res.get("effectiveDateTime"))
            or parse_fhir_datetime(_d(res.get("effectivePeriod")).get("start"))
            or parse_fhir_datetime(res.get("effectiveInstant"))
            or parse_fhir_datetime(res.get("issued"))
        )
        self.record.lab_results.append(lab)

    def _read_Encounter(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        if self.record.encounter is not None:
            return
        cls = res.get("class")
        if isinstance(cls, list):  # R5: list of CodeableConcept
            cls_code = _cc_code(cls[0]) if cls else ""
        else:
            cls_code = _s(_d(cls).get("code"))
        period = _d(res.get("period"))
        facility = _s(_d(res.get("serviceProvider")).get("display"))
        for loc in _as_list(res.get("location")):
            facility = facility or _s(_d(_d(loc).get("location")).get("display"))
        idents = [_s(_d(i).get("value")) for i in _as_list(res.get("identifier")) if _s(_d(i).get("value"))]
        self.record.encounter = EncounterData(
            patient_class=ENCOUNTER_CLASS.get(cls_code.upper(), cls_code),
            admit_at=parse_fhir_datetime(period.get("start")),
            discharge_at=parse_fhir_datetime(period.get("end")),
            facility=facility,
            visit_number=idents[0] if idents else "",
        )

    # List ------------------------------------------------------------------------------------

    def _read_List(self, res: dict, path: str, owner: dict | None) -> None:  # noqa: N802
        entries = [_d(e) for e in _as_list(res.get("entry"))]
        if not entries:
            reason = _cc_code(res.get("emptyReason"))
            list_code = {_s(c.get("code")) for c in _codings(res.get("code"))}
            if reason == "nilknown" and list_code & {"48765-2", "allergies"}:
                self.record.no_known_allergies = True
            return
        for i, entry in enumerate(entries):
            if entry.get("deleted") is True:
                continue
            target = self.resolve(entry.get("item"), res)
            if target is None:
                ref = _s(_d(entry.get("item")).get("reference"))
                if ref:
                    self.record.warnings.append(
                        f"{self._label(res)}.entry[{i}]: {ref} not found in the payload"
                    )
                continue
            item_path = f"{path}.entry[{i}].item"
            rt = _resource_type(target, item_path)
            if rt in CLINICAL_RESOURCE_TYPES and rt not in ("Medication", "List", "Patient"):
                self.process(target, item_path, owner=res)


_ALLERGY_CATEGORY = {"medication": "drug", "food": "food", "environment": "environment", "biologic": "other"}

ENCOUNTER_CLASS = {
    # v3 ActCode → HL7 v2 patient class (PV1-2)
    "IMP": "I", "ACUTE": "I", "NONAC": "I", "AMB": "O", "SS": "O", "VR": "O", "HH": "O", "FLD": "O",
    "OBSENC": "O", "EMER": "E", "PRENC": "P",
}


def _days(q: Any) -> int | None:
    q = _d(q)
    value = _int(q.get("value"))
    if value is None:
        return None
    unit = (_s(q.get("code")) or _s(q.get("unit"))).lower()
    if unit in ("wk", "week", "weeks"):
        return value * 7
    if unit in ("", "d", "day", "days"):
        return value
    return None


def _observation_value(res: dict) -> tuple[str, str]:
    if res.get("valueQuantity"):
        q = _d(res["valueQuantity"])
        comparator = _s(q.get("comparator"))
        return comparator + _num(q.get("value")), _s(q.get("unit")) or _s(q.get("code"))
    if res.get("valueCodeableConcept"):
        return _cc_text(res["valueCodeableConcept"]), ""
    for key in ("valueString", "valueInteger", "valueDateTime", "valueTime"):
        if key in res and _s(res[key]):
            return _s(res[key]) if key != "valueInteger" else _num(res[key]), ""
    if "valueBoolean" in res:
        return _s(res["valueBoolean"]), ""
    if res.get("valueRange"):
        r = _d(res["valueRange"])
        return f"{_num(_d(r.get('low')).get('value'))}-{_num(_d(r.get('high')).get('value'))}", _s(
            _d(r.get("high")).get("unit")
        )
    if res.get("valueRatio"):
        return _ratio_strength(res["valueRatio"]), ""
    return "", ""


_DOC_TYPES = {"18842-5": "DischargeSummary", "34133-9": "CCD", "18761-7": "TransferSummary",
              "34117-2": "HistoryAndPhysical"}


def read_fhir(data: bytes | str | dict) -> ClinicalRecord:
    """Read a FHIR R4 JSON Bundle or single clinical resource into a ``ClinicalRecord``.

    Raises ``ClinicalParseError`` for input that is not FHIR JSON or has an unsupported structure;
    R4B model validation problems become ``record.warnings`` and the content is still read.
    """
    resource = _load(data)
    rt = _resource_type(resource, "")
    if rt == "OperationOutcome":
        issues = [_s(_d(i).get("diagnostics")) or _cc_text(_d(i).get("details"))
                  for i in _as_list(resource.get("issue"))]
        detail = "; ".join(i for i in issues if i)
        suffix = f": {detail}" if detail else ""
        raise ClinicalParseError(f"OperationOutcome: the sender returned an error{suffix}")
    if rt != "Bundle" and rt not in CLINICAL_RESOURCE_TYPES:
        raise ClinicalParseError(
            f"{rt}: unsupported resourceType (expected Bundle or one of {', '.join(CLINICAL_RESOURCE_TYPES)})"
        )
    reader = _FhirReader()
    reader.top = resource
    reader.collect(resource, rt)
    problem = _validate_r4b(resource)
    if problem:
        reader.record.warnings.append(f"R4B validation: {problem} — read tolerantly as R4")
    record = reader.record
    record.control_id = _s(resource.get("id"))
    meta = _d(resource.get("meta"))
    record.sender = _s(meta.get("source"))
    if rt == "Bundle":
        record.message_type = "Bundle"
        ts = parse_fhir_datetime(resource.get("timestamp")) or parse_fhir_datetime(meta.get("lastUpdated"))
        record.sent_at = ts if isinstance(ts, datetime) else None
        for res, _path in reader.resources:
            if res.get("resourceType") == "Composition":
                code = _cc_code(res.get("type"))
                record.message_type = _DOC_TYPES.get(code, record.message_type)
                record.sender = record.sender or _s(_d(res.get("custodian")).get("display"))
                break
            if res.get("resourceType") == "MessageHeader":
                record.sender = record.sender or _s(_d(res.get("source")).get("name"))
                break
        if not reader.resources:
            record.warnings.append("Bundle carries no resources")
    else:
        record.message_type = rt
        ts = parse_fhir_datetime(meta.get("lastUpdated"))
        record.sent_at = ts if isinstance(ts, datetime) else None
    reader.process_all()
    finish_allergies(record)
    return record


# --------------------------------------------------------------------------------------------
# OperationOutcome and outbound builders
# --------------------------------------------------------------------------------------------

_PATH_PREFIX_RE = re.compile(r"^([A-Z][A-Za-z]+(?:[.\[][^\s:]*)?):\s")


def operation_outcome(error: str, expression: str = "") -> dict:
    """An OperationOutcome (R4) for a 400 answer; the element path is taken from the message if not given."""
    if not expression:
        m = _PATH_PREFIX_RE.match(error or "")
        if m:
            expression = m.group(1)
    issue: dict[str, Any] = {
        "severity": "error",
        "code": "structure" if expression else "invalid",
        "diagnostics": error,
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _fhir_datetime(value: datetime | date | str, field_name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{field_name} must be timezone-aware (a FHIR dateTime with a time needs one)")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise ValueError(f"{field_name}: expected datetime, date or str, got {type(value).__name__}")


def _json_number(value: Any) -> int | float:
    dec = Decimal(str(value))
    return int(dec) if dec == dec.to_integral_value() else float(dec)


def _reference(ref: str) -> dict:
    return {"reference": ref}


def _validated(resource: dict) -> dict:
    problem = _validate_r4b(resource)
    if problem:
        raise ValueError(f"built resource is not valid FHIR R4B: {problem}")
    return resource


def build_medication_dispense(
    *,
    dispense_id: str,
    patient_ref: str,
    medication_code: str,
    medication_system: str,
    medication_text: str,
    quantity: Any,
    unit: str,
    days_supply: int | None,
    when_handed_over: datetime | date | str,
    prescription_ref: str | None,
    pharmacy_name: str,
) -> dict:
    """A completed MedicationDispense (R4) as a JSON-ready dict, validated with the R4B model.

    ``medication_system`` may be a short name (rxnorm, ndc, snomed) or a system URI.
    ``when_handed_over`` must be timezone-aware when it is a datetime.
    """
    concept: dict[str, Any] = {}
    if medication_code:
        system = _SYSTEM_TO_URI.get((medication_system or "").lower(), medication_system or "")
        coding: dict[str, Any] = {"code": medication_code}
        if system:
            coding = {"system": system, **coding}
        if medication_text:
            coding["display"] = medication_text
        concept["coding"] = [coding]
    if medication_text:
        concept["text"] = medication_text
    if not concept:
        raise ValueError("a medication code or text is required")
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": dispense_id,
        "status": "completed",
        "medicationCodeableConcept": concept,
        "subject": _reference(patient_ref),
    }
    if pharmacy_name:
        resource["performer"] = [{"actor": {"display": pharmacy_name}}]
    if prescription_ref:
        resource["authorizingPrescription"] = [_reference(prescription_ref)]
    if quantity is not None and quantity != "":
        qty: dict[str, Any] = {"value": _json_number(quantity)}
        if unit:
            qty["unit"] = unit
        resource["quantity"] = qty
    if days_supply is not None:
        resource["daysSupply"] = {
            "value": int(days_supply),
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    resource["whenHandedOver"] = _fhir_datetime(when_handed_over, "when_handed_over")
    return _validated(resource)


def build_communication(
    *,
    communication_id: str,
    patient_ref: str,
    recipient_ref: str,
    text: str,
    sent: datetime | date | str,
) -> dict:
    """A completed Communication (R4) carrying ``text``, validated with the R4B model."""
    if not text:
        raise ValueError("text is required")
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": communication_id,
        "status": "completed",
        "subject": _reference(patient_ref),
        "sent": _fhir_datetime(sent, "sent"),
        "payload": [{"contentString": text}],
    }
    if recipient_ref:
        resource["recipient"] = [_reference(recipient_ref)]
    return _validated(resource)
