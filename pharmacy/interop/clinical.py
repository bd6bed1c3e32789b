"""Plain data the clinical readers (HL7 v2, FHIR R4, C-CDA, free text) produce.

Pure: no Django, no ORM. Every reader returns a ``ClinicalRecord``; services map it to models,
``inspect_clinical`` prints it, ``reconciliation.compare`` compares it with prescriptions.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime


class ClinicalParseError(ValueError):
    """Input that cannot be read; the message names what is wrong and where."""


# Code-system names used across readers (HL7 v2 table 0396 / FHIR URIs / C-CDA OIDs map to these).
RXNORM = "rxnorm"
NDC = "ndc"
SNOMED = "snomed"
LOINC = "loinc"
ICD10CM = "icd10cm"
CVX = "cvx"
LOCAL = "local"


@dataclass
class Identifier:
    value: str
    type: str = ""  # e.g. MR, SS, PI (HL7 table 0203)
    assigning_authority: str = ""


@dataclass
class PatientData:
    family: str = ""
    given: str = ""
    birth_date: date | None = None
    sex: str = ""  # M | F | O | U
    identifiers: list[Identifier] = field(default_factory=list)
    phone: str = ""
    address: str = ""


@dataclass
class MedicationData:
    text: str = ""  # the original text as the sender wrote it
    name: str = ""
    code: str = ""
    code_system: str = ""  # rxnorm | ndc | snomed | local | ""
    strength: str = ""
    dose: str = ""
    route: str = ""
    frequency: str = ""
    status: str = ""  # active | completed | stopped | on-hold | cancelled | unknown | …
    start_date: date | None = None
    end_date: date | None = None
    prescriber: str = ""
    quantity: str = ""
    days_supply: int | None = None
    refills: int | None = None
    as_needed: bool = False
    negated: bool = False  # C-CDA negationInd / "not taken"
    source: str = ""  # where in the payload it came from, e.g. "RXE", "OBX-5", "10160-0"
    sig: str = ""  # free-text directions as written (FHIR dosage.text, C-CDA free-text SIG)


@dataclass
class AllergyData:
    substance: str = ""
    code: str = ""
    code_system: str = ""
    category: str = ""  # drug | food | environment | other
    reaction: list[str] = field(default_factory=list)
    severity: str = ""  # reaction severity: mild | moderate | severe | ""
    criticality: str = ""  # potential for a future critical reaction: high | low | unable-to-assess | ""
    status: str = ""  # active | inactive | resolved | ""
    negated: bool = False


@dataclass
class ProblemData:
    code: str = ""
    code_system: str = ""  # icd10cm | snomed | ""
    description: str = ""
    onset: date | None = None
    status: str = ""


@dataclass
class LabResultData:
    code: str = ""  # LOINC when code_system == "loinc"
    code_system: str = ""
    name: str = ""
    value: str = ""
    unit: str = ""
    reference_range: str = ""
    abnormal_flag: str = ""
    observed_at: datetime | date | None = None


@dataclass
class EncounterData:
    patient_class: str = ""
    admit_at: datetime | date | None = None
    discharge_at: datetime | date | None = None
    facility: str = ""
    visit_number: str = ""


@dataclass
class ClinicalRecord:
    format: str  # hl7v2 | fhir | ccda | text
    message_type: str = ""  # ADT^A03, RDE^O11, Bundle, CCD, DischargeSummary …
    control_id: str = ""  # MSH-10 / Bundle.id / ClinicalDocument.id
    sender: str = ""  # MSH-3^MSH-4 / Bundle meta source / custodian
    sent_at: datetime | None = None
    version: str = ""
    patient: PatientData | None = None
    medications: list[MedicationData] = field(default_factory=list)
    allergies: list[AllergyData] = field(default_factory=list)
    no_known_allergies: bool = False  # no known DRUG allergies (NKDA/NKA), never food/environment-only
    # "no information" (nullFlavor, "No data", "Not applicable"…): the list is UNKNOWN, not empty.
    medications_unknown: bool = False
    allergies_unknown: bool = False
    problems: list[ProblemData] = field(default_factory=list)
    lab_results: list[LabResultData] = field(default_factory=list)
    encounter: EncounterData | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def is_discharge(self) -> bool:
        return self.message_type in {"ADT^A03", "DischargeSummary"}

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


# ---------------------------------------------------------------------------------------------
# Shared clinical semantics for every reader
# ---------------------------------------------------------------------------------------------

# SNOMED CT situations that state "no known drug allergy" for every substance or for drugs.
NKDA_CODES = frozenset({"716186003", "409137002"})  # No known allergy; No known drug allergy
# "No known food / environmental / insect / latex allergy": say nothing about drugs.
NOT_DRUG_NO_KNOWN_CODES = frozenset({"428607008", "429625007", "428197003", "1003774007"})
NO_KNOWN_ALLERGY_CODES = NKDA_CODES | NOT_DRUG_NO_KNOWN_CODES

_NKDA_TEXT_RE = re.compile(
    r"^(?:nka|nkda|nkma|no\s+known\s+(?:drug\s+|medication\s+|medicine\s+)?allerg(?:y|ies)"
    r"(?:\s+to\s+(?:drugs?|medications?))?|no\s+(?:drug\s+|medication\s+)?allergies(?:\s+known)?"
    r"|patient\s+has\s+no\s+known\s+(?:drug\s+)?allergies)$"
)
_NOT_DRUG_NO_KNOWN_RE = re.compile(
    r"^(?:nkfa|nkea|nkla)$|^no\s+known\s+(?:food|environmental|environment|insect|latex|seasonal|animal|pollen|dietary)"
    r"(?:\s+\w+)?\s+allerg(?:y|ies)$"
)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9/ ]+", " ", (text or "").lower()).split())


def no_known_scope(codes: set[str] | frozenset[str] = frozenset(), text: str = "") -> str:
    """Whether a statement is a "no known … allergy": "drug" (NKDA/NKA: drugs included), "other"
    (food, environmental, insect, latex only) or "" (not such a statement). SNOMED CT 716186003 /
    409137002 are the drug-inclusive ones."""
    if codes & NKDA_CODES:
        return "drug"
    if codes & NOT_DRUG_NO_KNOWN_CODES:
        return "other"
    plain = _plain(text)
    if _NKDA_TEXT_RE.match(plain):
        return "drug"
    if _NOT_DRUG_NO_KNOWN_RE.match(plain):
        return "other"
    return ""


_UNKNOWN_PHRASES = re.compile(
    r"\bno\s+(?:\w+\s+){0,3}(?:data|information|info)\b|\bnone\s+(?:recorded|reported|documented|on\s+file"
    r"|available|entered|listed)\b|\bnot\s+(?:applicable|available|recorded|documented|on\s+file|obtained"
    r"|asked|reported|known|assessed|entered|specified|given)\b|^n\s*/?\s*a$|^unknown$|\bunknown\s+"
    r"(?:medications?|allerg(?:y|ies)|history)\b|\binformation\s+(?:is\s+)?(?:not|un)available\b"
    r"|\bunable\s+to\s+(?:obtain|assess)\b|\bdeclined\s+to\s+(?:answer|provide)\b|^nullflavor"
    r"|^(?:ni|unk|asku|nask|na|msk|oth|nav)$"
)
_NONE_PHRASES = re.compile(
    r"^(?:none|nil|no\s+(?:known\s+|current\s+|active\s+|home\s+|regular\s+|outpatient\s+)?(?:medications?"
    r"|meds|medicines?|drugs|prescriptions?)(?:\s+(?:reported|known|at\s+this\s+time|prescribed))?"
    r"|(?:patient\s+|pt\s+)?(?:is\s+)?not\s+(?:taking|on)\s+any\s+(?:medications?|meds)"
    r"|(?:patient\s+|pt\s+)?takes\s+no\s+(?:medications?|meds))$"
)


def placeholder(text: str) -> str:
    """"unknown" for a no-information placeholder ("No data", "None recorded", "No information",
    "Not applicable", "No medication data is applicable"), "none" for an explicit empty list ("No
    known medications", "None"), "" for real content. Text carrying a number (a strength, a date)
    is never a placeholder."""
    plain = _plain(text)
    if not plain or len(plain) > 120 or re.search(r"\d", plain):
        return ""
    if _NONE_PHRASES.match(plain):
        return "none"
    if _UNKNOWN_PHRASES.search(plain):
        return "unknown"
    return ""


_NULL_NAME_PARTS = frozenset({'""', "''", "null", "(null)", "<null>", "nil", "none", "undefined", "n/a"})


def name_part(value: str | None) -> str:
    """A name part as written, or "" for a literal null a sender exported as text ("null", '""')."""
    text = " ".join((value or "").split())
    return "" if text.lower() in _NULL_NAME_PARTS else text


def name_parts(values) -> str:
    return " ".join(p for p in (name_part(v) for v in values) if p)


def _is_active(allergy: AllergyData) -> bool:
    return not allergy.negated and (allergy.status or "active").lower() not in ("inactive", "resolved", "refuted")


def finish_allergies(record: ClinicalRecord) -> None:
    """NKDA never stands next to an active drug allergy in the same payload (a pharmacist reads the
    allergy, not the checkbox); called by every reader after reading."""
    if not record.no_known_allergies:
        return
    conflicting = [a for a in record.allergies
                   if _is_active(a) and (a.category or "drug") not in ("food", "environment")]
    if conflicting:
        record.no_known_allergies = False
        names = ", ".join(a.substance or a.code or "(unnamed)" for a in conflicting)
        record.warnings.append(f"'no known allergies' stated but an active drug allergy is listed ({names}):"
                               " the allergy is kept, 'no known allergies' is ignored")


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
