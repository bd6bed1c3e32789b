"""Plain data the clinical readers (HL7 v2, FHIR R4, C-CDA, free text) produce.

Pure: no Django, no ORM. Every reader returns a ``ClinicalRecord``; services map it to models,
``inspect_clinical`` prints it, ``reconciliation.compare`` compares it with prescriptions.
"""
from __future__ import annotations

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
    severity: str = ""  # mild | moderate | severe | ""
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
    no_known_allergies: bool = False
    problems: list[ProblemData] = field(default_factory=list)
    lab_results: list[LabResultData] = field(default_factory=list)
    encounter: EncounterData | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def is_discharge(self) -> bool:
        return self.message_type in {"ADT^A03", "DischargeSummary"}

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
