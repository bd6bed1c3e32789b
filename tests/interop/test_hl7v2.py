"""HL7 v2 reader (pharmacy/interop/hl7v2.py). Pure: no database.

Every file of the shared corpus is read and checked against expectations written by reading the
file by hand (``CORPUS``); a corpus file without an entry fails
``test_every_corpus_file_has_an_expectation``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord
from pharmacy.interop.hl7v2 import build_ack, message_header, parse_message, read_hl7v2, split_messages

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus" / "hl7v2"


# ---------------------------------------------------------------------------------------------
# Corpus expectations
# ---------------------------------------------------------------------------------------------


@dataclass
class Refused:
    """read_hl7v2 must raise ClinicalParseError whose message contains all of ``words``."""

    words: tuple[str, ...]


@dataclass
class Read:
    types: list[str]  # message_type per record
    patient: tuple | None = None  # (family, given, birth_date, sex) of the first record
    meds: list[tuple] = field(default_factory=list)  # (code, code_system, name fragment) per med
    allergies: list[tuple] = field(default_factory=list)  # (substance, category, severity)
    problems: list[tuple] = field(default_factory=list)  # (code, code_system)
    labs: int = 0
    warnings: tuple[str, ...] = ()  # fragments expected among the first record's warnings
    control_ids: list[str] | None = None


ADAM = ("EVERYMAN", "ADAM", date(1988, 8, 18), "M")
JANE = ("DOE", "JANE", None, "F")
JOHN_DOE = ("DOE", "JOHN", date(1980, 2, 2), "F")
VINAH = ("XXXXXXXXXX", "", None, "")  # DOB 10131113 is refused as implausible; sex "1" unknown
ACETAMINOPHEN_MO = ("acetaminophen", "drug", "moderate")
HP = "hl7apy/test_parser.py__"
LFH = "linuxforhealth-hl7v2-fhir-converter/"

CORPUS: dict[str, Refused | Read] = {
    # hl7apy: malformed MSH
    HP + "L184__MSH_no_encoding_chars_malformed.hl7": Refused(("MSH-2", "missing")),
    HP + "L192__MSH_missing_encoding_chars_malformed.hl7": Refused(("MSH-2", "incomplete")),
    HP + "L200__MSH_too_many_encoding_chars_malformed.hl7": Refused(("MSH-2", "too many")),
    HP + "L203__MSH_v27_too_many_encoding_chars_malformed.hl7": Refused(("MSH-2", "too many")),
    HP + "L211__MSH_missing_MSH9_message_type.hl7": Refused(("MSH-9", "missing")),
    HP + "L218__MSH_v27_duplicate_encoding_chars_malformed.hl7": Refused(
        ("MSH-2", "duplicate")),
    # hl7apy: readable
    HP + "L235__MSH_incomplete_MSH9_ADT_caret_only.hl7": Read(
        ["ADT"], warnings=("MSH-9: trigger event missing", "MSH-10", "MSH-12")),
    HP + "L238__MSH_missing_version_MSH12.hl7": Read(["ADT^A01"], warnings=("MSH-12",)),
    HP + "L39__RSP_K22_PDQ_response.hl7": Read(
        ["RSP^K22"], patient=("JOHN", "SMITH", date(1969, 1, 13), "M")),
    HP + "L47__RSP_K22_invalid_missing_PID3_components.hl7": Read(
        ["RSP^K22"], patient=("JOHN", "SMITH", date(1969, 1, 13), "M")),
    HP + "L74__OML_O33_multiple_groups.hl7": Read(
        ["OML^O33"], patient=("PIPPO", "PLUTO", date(1979, 5, 15), "M")),
    "hl7apy/test_to_string.py__L51__MSH_with_highlight_escape_H_N.hl7": Read(["RSP^SLI"]),
    # LinuxForHealth
    LFH + "HL7ADTMessageTest__L204__ADT_A03_AL1_groups_mixed_separators.hl7": Read(
        ["ADT^A03"], patient=("", "", None, ""), allergies=[("acetaminophen", "", "")],
        problems=[("B45678", "local")], warnings=("duplicate allergy",)),
    LFH + "HL7ADTMessageTest__L370__ADT_A28_AL1_PR1_IN1.hl7": Read(
        ["ADT^A28"], patient=JANE, allergies=[ACETAMINOPHEN_MO], problems=[("B45678", "local")]),
    LFH + "HL7ADTMessageTest__L82__ADT_A01_OBX_TX_AL1_mixed_separators.hl7": Read(
        ["ADT^A01"], patient=JANE, allergies=[ACETAMINOPHEN_MO], problems=[("B45678", "local")]),
    LFH + "Hl7AllergyFHIRConversionTest__L27__ADT_A01_AL1_no_code_system_no_trailing_CR.hl7": Read(
        ["ADT^A01"], patient=JOHN_DOE,
        allergies=[("PENICILLIN", "drug", "mild"), ("CAT DANDER", "environment", "severe")]),
    LFH + "Hl7AllergyFHIRConversionTest__L42__ADT_A01_AL1_no_severity.hl7": Read(
        ["ADT^A01"], patient=JOHN_DOE, allergies=[("OXYCODONE", "drug", "")]),
    LFH + "Hl7MedicationRequestFHIRConversionTest__L207__OMP_O09_RXO_RXR.hl7": Read(
        ["OMP^O09"], patient=JANE, meds=[("00054418425", "ndc", "Dexamethasone")]),
    LFH + "Hl7MedicationRequestFHIRConversionTest__L49__RDE_O11_RXO_RXE_LF_separators.hl7": Read(
        # RXO requests "Test15 SODIUM 100 MG CAPSULE", RXE encodes testosterone cypionate: both kept
        ["RDE^O11"], patient=JANE, meds=[("62756-017", "ndc", "Testosterone Cypionate"),
                                         ("RX800006", "local", "Test15 SODIUM")],
        warnings=("RXO-1 'Test15 SODIUM 100 MG CAPSULE' differs",)),
    LFH + "Hl7MedicationRequestFHIRConversionTest__L532__RDE_O11_RXE_empty_MSH_fields.hl7": Read(
        ["RDE^O11"], patient=JANE, meds=[("DUONEB3INH", "local", "IPRATROPIUM-ALBUTEROL")],
        warnings=("MSH-10",)),
    LFH + "Hl7RDEMessageTest__L140__RDE_O11_with_AL1.hl7": Read(
        ["RDE^O11"], patient=JANE, meds=[("DEFAULTMED", "local", "cefTRIAXone")],
        allergies=[ACETAMINOPHEN_MO]),
    LFH + "Hl7VXUMessageTest__L219__VXU_V04_multi_RXA.hl7": Read(
        ["VXU^V04"], patient=JANE, warnings=("2 vaccine administration",)),
    LFH + "ORU-multiline-short-mixed.hl7": Read(
        ["ORU^R01"], patient=("Patient", "Autogenerated", date(1963, 3, 6), "M"), labs=3),
    LFH + "ORU-multiline-short.hl7": Read(
        ["ORU^R01"], patient=("Patient", "Autogenerated", date(1963, 3, 6), "M"), labs=2),
    LFH + "sample_unix.hl7": Read(
        ["ADT^A01"], patient=JOHN_DOE, allergies=[("OXYCODONE", "drug", ""), ("TRAMADOL", "drug", "")],
        problems=[("", "")], warnings=("doubled escape character",)),
    # Microsoft FHIR-Converter
    "ms-fhir-converter/ADT-A01-01.hl7": Read(
        ["ADT^A01"], patient=ADAM, allergies=[("PENICILLIN", "environment", "mild")],
        problems=[("422504002", "snomed")]),
    "ms-fhir-converter/ADT-A03-01.hl7": Read(
        ["ADT^A03"], patient=ADAM, allergies=[("PENICILLIN", "environment", "mild")],
        problems=[("422504002", "snomed")]),
    "ms-fhir-converter/ADT01-23.hl7": Read(
        ["ADT^A01"], patient=("DUCK", "DONALD", date(1924, 10, 10), "M"), problems=[("71596", "icd9")]),
    "ms-fhir-converter/LAB-ORU-1.hl7": Read(
        ["ORU^R01"], patient=("DUCK", "DONALD", date(1924, 10, 10), "M"), labs=10),
    "ms-fhir-converter/OMG-O19-02.hl7": Read(
        ["OMG^O19"], patient=ADAM, allergies=[("XYZallergen", "drug", "mild")],
        problems=[("E10.9", "icd10cm"), ("E10.9", "icd10cm")], warnings=("duplicate allergy",)),
    "ms-fhir-converter/ORU-R01-01.hl7": Read(
        ["ORU^R01"], patient=("Finn", "Huckleberry", date(1963, 8, 15), "M"), labs=4),
    "ms-fhir-converter/RDE-O11-01.hl7": Read(
        # RXO requests ampicillin 250 mg caps, RXE encodes a nicardipine infusion: a pharmacist sees both
        ["RDE^O11"], patient=ADAM, meds=[("0143963401", "ndc", "NICARDIPINE"), ("00047040230", "ndc", "Ampicillin")],
        warnings=("RXO-1 'Ampicillin 250 mg caps' differs",)),
    "ms-fhir-converter/RDE-O11-02.hl7": Read(
        ["RDE^O11"], patient=ADAM,
        # each order: RXE nicardipine infusion, RXO ampicillin 250 mg caps (different drugs, both kept)
        meds=[("0143963401", "ndc", "NICARDIPINE"), ("00047040230", "ndc", "Ampicillin"),
              ("2669", "ndc", "NICARDIPINE"), ("00047040230", "ndc", "Ampicillin")]),
    "ms-fhir-converter/RDS-O13-01.hl7": Read(
        ["RDS^O13"], patient=ADAM, meds=[("01151327", "ndc", "Doxycycline")]),
    "ms-fhir-converter/VXU-V04-01.hl7": Read(["VXU^V04"], patient=ADAM, warnings=("vaccine",)),
    # python-hl7
    "python-hl7/samples.py__rep_sample_hl7.hl7": Read(["ORU^R01"], patient=("", "", None, "")),
    "python-hl7/samples.py__sample_bad_batch.hl7": Refused(("no MSH", "BHS")),
    "python-hl7/samples.py__sample_bad_batch1.hl7": Read(
        ["ADT^A04"], patient=VINAH, warnings=("BHS inside a message",)),
    "python-hl7/samples.py__sample_bad_file.hl7": Refused(("no MSH", "FHS")),
    "python-hl7/samples.py__sample_bad_file2.hl7": Read(
        ["ADT^A04"], patient=VINAH, warnings=("FHS inside a message",)),
    "python-hl7/samples.py__sample_batch.hl7": Read(
        ["ADT^A04"], patient=VINAH, control_ids=["12334456778890"]),
    "python-hl7/samples.py__sample_batch1.hl7": Read(
        ["ADT^A04", "ADT^A04"], patient=VINAH, control_ids=["12334456778890", "12334456778891"]),
    "python-hl7/samples.py__sample_batch2.hl7": Read(
        ["ADT^A04", "ADT^A04"], patient=VINAH, control_ids=["12334456778890", "12334456778891"]),
    "python-hl7/samples.py__sample_file.hl7": Read(["ADT^A04"], patient=VINAH),
    "python-hl7/samples.py__sample_file1.hl7": Read(
        ["ADT^A04"] * 3, patient=VINAH, control_ids=["12334456778890", "12334456778891", "12334456778890"]),
    "python-hl7/samples.py__sample_hl7.hl7": Read(
        ["ORU^R01"], patient=("EVERYWOMAN", "EVE", None, "F"), labs=2, warnings=("PID-7",)),
    "python-hl7/samples.py__sample_msh.hl7": Read(
        ["ADT^A01"], patient=("RUFUSS", "MELLODIAL", date(1952, 11, 29), "F"), problems=[("440.21", "icd9")]),
    "python-hl7/test_parse.py__non_ascii_cp1252.hl7": Refused(("MSH-9",)),
    # Added for issue 16 (read by hand; no medications or allergies in any of them):
    # HL7-dotnetcore (MIT): an ADT^O01 with blank lines between segments; an ORM^O01 lab order whose
    # PID-5 is "Jane^Doe^T" (family Jane, given Doe, as written).
    "hl7-dotnetcore/Sample-ADT.txt": Read(["ADT^O01"], patient=("DOE", "JOHN", date(1948, 2, 3), "M")),
    "hl7-dotnetcore/Sample-ORM.txt": Read(["ORM^O01"], patient=("Jane", "Doe", date(1992, 11, 12), "M")),
    # nHapi (MPL-2.0): seven OML^O21 lab messages in one file; an Italian ADT^A03 with four PID-3
    # identifiers; an OMD^O03 diet order whose PID-8 sex "1" is not table 0001.
    "nhapi/OML_O21_messages.txt": Read(["OML^O21"] * 7, patient=("EVERYMAN", "ADAM", date(1980, 1, 1), "M")),
    "nhapi/adt_a03.txt": Read(["ADT^A03"], patient=("ZZZ", "ZZZ", date(1983, 8, 24), "F")),
    "nhapi/omd_o03.txt": Read(["OMD^O03"], patient=("DUMAS", "VICTOR HUGO", date(1974, 3, 25), ""),
                              warnings=("PID-8",)),
}


def _corpus_files() -> list[str]:
    return sorted(str(p.relative_to(CORPUS_DIR)) for p in CORPUS_DIR.rglob("*") if p.is_file())


def test_every_corpus_file_has_an_expectation():
    files = _corpus_files()
    assert files, f"no corpus at {CORPUS_DIR}"
    assert set(files) == set(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file(name):
    data = (CORPUS_DIR / name).read_bytes()
    expected = CORPUS[name]
    if isinstance(expected, Refused):
        with pytest.raises(ClinicalParseError) as excinfo:
            read_hl7v2(data)
        for word in expected.words:
            assert word in str(excinfo.value)
        return
    records = read_hl7v2(data)
    assert [r.message_type for r in records] == expected.types
    assert all(r.format == "hl7v2" for r in records)
    first = records[0]
    if expected.patient is None:
        assert first.patient is None
    else:
        p = first.patient
        assert (p.family, p.given, p.birth_date, p.sex) == expected.patient
    assert len(first.medications) == len(expected.meds)
    for med, (code, system, name_part) in zip(first.medications, expected.meds, strict=True):
        assert (med.code, med.code_system) == (code, system)
        assert name_part.lower() in med.name.lower()
    assert [(a.substance, a.category, a.severity) for a in first.allergies] == expected.allergies
    assert [(p.code, p.code_system) for p in first.problems] == expected.problems
    assert len(first.lab_results) == expected.labs
    for fragment in expected.warnings:
        assert any(fragment in w for w in first.warnings), (fragment, first.warnings)
    if expected.control_ids is not None:
        assert [r.control_id for r in records] == expected.control_ids


def _corpus(name: str) -> ClinicalRecord:
    return read_hl7v2((CORPUS_DIR / name).read_bytes())[0]


def test_corpus_rde_details():
    med = _corpus("ms-fhir-converter/RDE-O11-01.hl7").medications[0]
    assert (med.source, med.route, med.dose, med.quantity, med.refills) == ("RXE", "intravenous", "5 mg/hr",
                                                                            "3 Bag", 12)
    assert med.frequency == "tid"  # TQ1-3 of the order
    assert med.status == "active"  # ORC-1 NW
    assert med.text.startswith("Titrate to BP less than 180")  # RXE-7
    assert med.start_date == date(2019, 11, 4)

    two = _corpus("ms-fhir-converter/RDE-O11-02.hl7").medications
    assert [(m.source, m.route) for m in two] == [("RXE", "intravenous"), ("RXO", "intravenous"),
                                                  ("RXE", "intraperitoneal"), ("RXO", "intraocular")]
    # the requested ampicillin keeps its own RXO fields: 2 caps, "1 tablet by oral route 2 times daily"
    assert (two[1].dose, two[1].frequency, two[1].quantity) == ("2 capsule", "bid", "10 capsule")

    lf = _corpus("linuxforhealth-hl7v2-fhir-converter/"
                 "Hl7MedicationRequestFHIRConversionTest__L49__RDE_O11_RXO_RXE_LF_separators.hl7").medications[0]
    assert (lf.dose, lf.frequency, lf.refills, lf.quantity, lf.start_date) == ("100 mg", "bid", 5, "10",
                                                                              date(2018, 6, 22))

    duoneb = _corpus("linuxforhealth-hl7v2-fhir-converter/"
                     "Hl7MedicationRequestFHIRConversionTest__L532__RDE_O11_RXE_empty_MSH_fields.hl7")
    med = duoneb.medications[0]
    assert (med.frequency, med.prescriber) == ("daily", "ORDERING PROVIDER")
    assert duoneb.control_id == "" and duoneb.sender == ""

    rde_al1 = _corpus("linuxforhealth-hl7v2-fhir-converter/Hl7RDEMessageTest__L140__RDE_O11_with_AL1.hl7")
    assert (rde_al1.medications[0].route, rde_al1.medications[0].status) == ("intramuscular", "unknown")


def test_corpus_omp_and_rds_details():
    omp = _corpus("linuxforhealth-hl7v2-fhir-converter/"
                  "Hl7MedicationRequestFHIRConversionTest__L207__OMP_O09_RXO_RXR.hl7").medications[0]
    assert (omp.source, omp.route, omp.frequency, omp.quantity, omp.refills, omp.strength) == (
        "RXO", "oral", "q6h", "4 tablet", 0, "4 mg")
    assert omp.prescriber == "ORDERING PROVIDER"
    assert omp.text == "Take 1 tablet by mouth every 6 (six) hours."

    rds = _corpus("ms-fhir-converter/RDS-O13-01.hl7").medications[0]
    assert (rds.route, rds.quantity, rds.refills, rds.strength, rds.dose) == ("oral", "6 Tablet", 1, "150 mg",
                                                                             "1 Tablet")


def test_corpus_patient_encounter_and_header_details():
    adt = _corpus("ms-fhir-converter/ADT-A03-01.hl7")
    assert adt.is_discharge
    assert adt.control_id == "MSG00001" and adt.version == "2.8"
    assert adt.sender == "ADTApp^GHHSFacility"
    assert adt.sent_at == datetime(1989, 8, 18, 11, 26, tzinfo=timezone(timedelta(hours=2, minutes=15)))
    ids = [(i.value, i.type, i.assigning_authority) for i in adt.patient.identifiers]
    assert ids == [("PATID1234", "MR", "test1"), ("123456789", "SS", "USSSA")]
    assert adt.patient.phone == "78788788"
    assert adt.patient.address == "1000 Hospital Lane, Ste. 123, Ann Arbor, MI 99999, USA"
    enc = adt.encounter
    assert (enc.patient_class, enc.facility, enc.visit_number) == ("preadmit", "HOMERTON UNIVER", "40007716")
    assert enc.discharge_at.date() == date(2015, 2, 9)
    assert adt.problems[0].description == "Ischemic stroke(disorder)"
    assert adt.problems[0].onset == date(2004, 1, 25)

    allergy = _corpus(LFH + "HL7ADTMessageTest__L370__ADT_A28_AL1_PR1_IN1.hl7").allergies[0]
    assert (allergy.code, allergy.code_system) == ("1605", "local")
    assert allergy.reaction == ["Muscle Pain", "hair loss"]

    unix = _corpus("linuxforhealth-hl7v2-fhir-converter/sample_unix.hl7")
    assert unix.allergies[1].reaction == ["SEIZURES", "VOMITING"]  # literal "\\r" artefact removed
    assert unix.problems[0].description == "aortic stenosis"  # PRB-3 free text

    cerner = _corpus("python-hl7/samples.py__sample_msh.hl7")
    assert cerner.encounter.discharge_at is None  # PV1-45 is "" (explicit null)
    assert cerner.encounter.admit_at == datetime(2014, 2, 10, 22, 53)

    lab = _corpus("python-hl7/samples.py__sample_hl7.hl7").lab_results[0]
    assert (lab.code, lab.code_system, lab.value, lab.unit, lab.reference_range, lab.abnormal_flag) == (
        "1554-5", "local", "182", "mg/dl", "70_105", "H")
    cbc = _corpus("ms-fhir-converter/LAB-ORU-1.hl7").lab_results[1]
    assert (cbc.code, cbc.code_system, cbc.value, cbc.unit) == ("11273-0", "loinc", "4.06", "tera.l-1")


@pytest.mark.parametrize("name", [n for n, e in sorted(CORPUS.items()) if isinstance(e, Read)])
def test_corpus_header_matches_full_read(name):
    data = (CORPUS_DIR / name).read_bytes()
    header = message_header(data)
    record = read_hl7v2(data)[0]
    assert (header["type"], header["control_id"], header["sender"], header["version"], header["sent_at"]) == (
        record.message_type, record.control_id, record.sender, record.version, record.sent_at)


# ---------------------------------------------------------------------------------------------
# Synthetic messages
# ---------------------------------------------------------------------------------------------

def _msg(segments: list[str], sep: str = "\r") -> str:
    return sep.join(segments)


def _seg(seg_id: str, values: dict[int, str]) -> str:
    """Segment with the given fields set (HL7 numbering), the rest empty."""
    fields = [""] * (max(values) + 1)
    for n, value in values.items():
        fields[n] = value
    return "|".join([seg_id, *fields[1:]])


RDE = [
    "MSH|^~\\&|PHARM|GENHOSP|RXHUB|STORE1|20240301101500||RDE^O11^RDE_O11|MSG0001|P|2.5.1",
    "PID|1||MRN123^^^GENHOSP^MR~999-88-7777^^^SSA^SS||O'NEIL^MARY^K||19450712|F|||"
    "12 Elm St^Apt 2^Springfield^IL^62701^USA||(217)555-0100",
    _seg("PV1", {1: "1", 2: "I", 3: "4W^401^A^GENHOSP", 19: "V0001", 44: "20240228080000",
                 45: "20240301100000"}),
    "AL1|1|DA|70618^Penicillin^RXN|SV|Anaphylaxis~Hives",
    "ORC|NW|ORD1|FIL1||||||20240301101500|||1234^SMITH^JOHN^^^DR",
    "RXE|^Q6H^^20240301^^PRN|197361^Amlodipine 5 MG Oral Tablet^RXN|5||mg|TAB^Tablet|Take 1 tablet by mouth"
    "|||30|TAB^Tablet|3",
    "TQ1|1||Q6H||||20240301|20240331|PRN",
    "RXR|PO^Oral^HL70162",
]


def test_rde_fields():
    record = parse_message(_msg(RDE))
    med = record.medications[0]
    assert (med.name, med.code, med.code_system) == ("Amlodipine 5 MG Oral Tablet", "197361", "rxnorm")
    assert (med.dose, med.quantity, med.refills, med.route, med.frequency, med.as_needed) == (
        "5 mg", "30 Tablet", 3, "oral", "q6h", True)
    assert (med.status, med.prescriber, med.source) == ("active", "JOHN SMITH", "RXE")
    assert (med.start_date, med.end_date) == (date(2024, 3, 1), date(2024, 3, 31))
    assert med.strength == "5 mg"  # from the drug text
    assert med.text == "Take 1 tablet by mouth"
    assert record.patient.family == "O'NEIL"
    assert record.patient.address == "12 Elm St, Apt 2, Springfield, IL 62701, USA"
    assert record.patient.phone == "(217)555-0100"
    allergy = record.allergies[0]
    assert (allergy.substance, allergy.code, allergy.code_system, allergy.category, allergy.severity,
            allergy.reaction) == ("Penicillin", "70618", "rxnorm", "drug", "severe", ["Anaphylaxis", "Hives"])
    assert record.encounter.admit_at == datetime(2024, 2, 28, 8, 0)


@pytest.mark.parametrize(
    ("control", "status"),
    [("NW", "active"), ("RF", "active"), ("AF", "active"), ("OF", "active"), ("DC", "stopped"),
     ("CA", "stopped"), ("OD", "stopped"), ("DF", "stopped"), ("HD", "on-hold"), ("ZZ", "unknown")],
)
def test_order_control_status(control, status):
    segments = [s.replace("ORC|NW|", f"ORC|{control}|") for s in RDE]
    assert parse_message(_msg(segments)).medications[0].status == status


def test_orc5_used_when_orc1_is_status_change():
    segments = [s.replace("ORC|NW|ORD1|FIL1||", "ORC|SC|ORD1|FIL1||CM") for s in RDE]
    assert parse_message(_msg(segments)).medications[0].status == "completed"


@pytest.mark.parametrize(
    ("system", "expected"),
    [("RXN", "rxnorm"), ("RXNORM", "rxnorm"), ("NDC", "ndc"), ("N", "ndc"), ("SCT", "snomed"),
     ("SNM", "snomed"), ("LN", "loinc"), ("I10", "icd10cm"), ("ICD10", "icd10cm"), ("I9", "icd9"),
     ("99ZZZ", "local"), ("", "local")],
)
def test_code_systems(system, expected):
    segments = RDE[:5] + [f"RXE||12345^Some drug^{system}|1||mg"]
    assert parse_message(_msg(segments)).medications[0].code_system == expected


def test_compound_rxc_and_rxo_only_and_rxd():
    base = RDE[:5]
    rxo = parse_message(_msg(base + ["RXO|00054418425^Dexamethasone 4 MG Oral Tablet^NDC|4||mg|||"
                                      "Take 1 tablet by mouth daily||G||30|TAB^Tablet|2", "RXR|PO"]))
    med = rxo.medications[0]
    assert (med.source, med.code_system, med.dose, med.quantity, med.refills, med.frequency) == (
        "RXO", "ndc", "4 mg", "30 Tablet", 2, "daily")
    rxd = parse_message(_msg(base + ["RXD|1|00054418425^Dexamethasone^NDC|20240301|20|TAB^Tablet"]))
    assert (rxd.medications[0].source, rxd.medications[0].quantity) == ("RXD", "20 Tablet")
    tpn = parse_message(_msg(base + ["RXC|B|338-0049^Dextrose 10%^NDC|1000|mL",
                                     "RXC|A|KCL^Potassium chloride^L|20|meq"]))
    assert tpn.medications[0].name == "Dextrose 10% 1000 mL + Potassium chloride 20 meq"
    assert tpn.medications[0].source == "RXC"


def test_two_order_groups_give_two_medications():
    second = ["ORC|NW|ORD2", "RXE|^BID|860975^Metformin 500 MG Oral Tablet^RXN|500||mg", "RXR|PO"]
    meds = parse_message(_msg(RDE + second)).medications
    assert [(m.code, m.frequency) for m in meds] == [("197361", "q6h"), ("860975", "bid")]


def test_dg1_code_systems_and_nka():
    segments = RDE[:3] + [
        "AL1|1|DA|NKA^No Known Allergies",
        "DG1|1||E11.9^Type 2 diabetes mellitus without complications^I10|||F",
        "DG1|2||44054006^Diabetes mellitus type 2^SCT",
        "DG1|3|I9|250.00^DIABETES^I9",
    ]
    record = parse_message(_msg(segments))
    assert record.no_known_allergies and record.allergies == []
    assert [(p.code, p.code_system) for p in record.problems] == [
        ("E11.9", "icd10cm"), ("44054006", "snomed"), ("250.00", "icd9")]


def test_iam_segment():
    segments = RDE[:2] + [
        "IAM|1|DA|7980^Penicillin G^RXN|MO|Rash~Itching|A|||||||||||C",
        "IAM|2|FA|256349002^Peanut^SCT|SV|Anaphylaxis|A|||||||||||I",
        "IAM|3|DA|2670^Codeine^RXN|MI|Nausea|D",
    ]
    allergies = parse_message(_msg(segments)).allergies
    assert [(a.substance, a.category, a.severity, a.status) for a in allergies] == [
        ("Penicillin G", "drug", "moderate", "active"), ("Peanut", "food", "severe", "inactive")]


# -- ADT^A03 discharge medications in OBX ------------------------------------------------------

A03 = [
    "MSH|^~\\&|EHR|HOSP|RXHUB|PHARM|20240305120000||ADT^A03^ADT_A03|DIS001|P|2.5.1",
    "EVN|A03|20240305120000",
    "PID|1||MRN9^^^HOSP^MR||LEE^ANNA||19600101|F",
    _seg("PV1", {1: "1", 2: "I", 3: "5E^512^1^HOSP", 19: "V9", 44: "20240301090000",
                 45: "20240305113000"}),
]


def test_a03_discharge_medications_from_coded_obx_text():
    obx = ("OBX|1|TX|10183-2^Hospital discharge medications^LN||Metformin 500 mg PO BID~"
           "Lisinopril 10 mg PO daily~Atorvastatin 40 mg PO QHS PRN||||||F")
    record = parse_message(_msg(A03 + [obx]))
    assert record.is_discharge
    assert record.encounter.discharge_at == datetime(2024, 3, 5, 11, 30)
    meds = [(m.name, m.strength, m.route, m.frequency, m.as_needed, m.source) for m in record.medications]
    assert meds == [
        ("metformin", "500 mg", "oral", "bid", False, "OBX-5"),
        ("lisinopril", "10 mg", "oral", "daily", False, "OBX-5"),
        ("atorvastatin", "40 mg", "oral", "qhs", True, "OBX-5"),
    ]
    assert record.medications[0].text == "Metformin 500 mg PO BID"
    assert record.lab_results == []


def test_a03_ft_with_line_breaks_and_header():
    obx = ("OBX|1|FT|MEDS^Discharge Medications^L||Discharge medications:\\.br\\1. Furosemide 40 mg PO daily"
           "\\.br\\2. Potassium chloride 20 mEq PO daily||||||F")
    meds = parse_message(_msg(A03 + [obx])).medications
    assert [(m.name, m.strength) for m in meds] == [("furosemide", "40 mg"), ("potassium chloride", "20 meq")]


def test_a03_uncoded_text_is_read_only_when_it_parses_as_medications():
    obx_meds = "OBX|1|TX|NOTE^Instructions^L||METFORMIN 500MG BID, LISINOPRIL 10MG DAILY||||||F"
    obx_note = "OBX|2|TX|NOTE^Instructions^L||Follow up with your doctor in 2 weeks||||||F"
    record = parse_message(_msg(A03 + [obx_meds, obx_note]))
    assert [m.name for m in record.medications] == ["metformin", "lisinopril"]


def test_a03_typo_lines_are_kept_but_flagged():
    obx = "OBX|1|TX|10160-0^History of medication use^LN||metfromin 500 mg bid~Xyzzyquux 1 tab daily||||||F"
    record = parse_message(_msg(A03 + [obx]))
    assert [m.name for m in record.medications] == ["metformin", "Xyzzyquux"]
    review = [w for w in record.warnings if "not confidently read" in w]
    assert len(review) == 2


def test_a03_coded_medication_obx():
    obx = "OBX|1|CWE|52471-0^Medications^LN||197361^Amlodipine 5 MG Oral Tablet^RXN||||||F"
    med = parse_message(_msg(A03 + [obx])).medications[0]
    assert (med.name, med.code, med.code_system, med.source) == (
        "Amlodipine 5 MG Oral Tablet", "197361", "rxnorm", "OBX-5")


def test_a03_without_medications_has_none():
    obx = "OBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F"
    record = parse_message(_msg(A03 + [obx]))
    assert record.medications == [] and record.lab_results == []


def test_raw_line_break_inside_obx_text_is_kept():
    text = _msg(A03) + ("\rOBX|1|TX|10183-2^Discharge medications^LN||Aspirin 81 mg daily\n"
                        "Furosemide 20 mg daily||||||F")
    record = parse_message(text)
    assert [m.name for m in record.medications] == ["aspirin", "furosemide"]
    assert any("not a segment" in w for w in record.warnings)


def test_vxu_vaccines_are_not_medications_but_ras_administrations_are():
    vxu = ["MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101||VXU^V04^VXU_V04|V1|P|2.5.1", "PID|1||1^^^X^MR||A^B",
           "ORC|RE", "RXA|0|1|20240101|20240101|08^Hep B^CVX|0.5|mL"]
    record = parse_message(_msg(vxu))
    assert record.medications == []
    assert any("vaccine" in w for w in record.warnings)
    ras = [s.replace("VXU^V04^VXU_V04", "RAS^O17^RAS_O17").replace("08^Hep B^CVX", "1191^Aspirin^RXN")
           for s in vxu]
    med = parse_message(_msg(ras)).medications[0]
    assert (med.name, med.code_system, med.status, med.source) == ("Aspirin", "rxnorm", "completed", "RXA")


# -- Separators, encodings, escapes --------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segment_separators(sep):
    expected = parse_message(_msg(RDE)).to_dict()
    assert parse_message(_msg(RDE, sep)).to_dict() == expected
    assert parse_message(_msg(RDE, sep) + sep).to_dict() == expected  # with a final terminator


def test_mixed_separators_bom_and_mllp_framing():
    expected = parse_message(_msg(RDE)).to_dict()
    mixed = "\r\n".join(RDE[:2]) + "\n" + "\r".join(RDE[2:])
    assert parse_message(mixed).to_dict() == expected
    assert parse_message(b"\xef\xbb\xbf" + mixed.encode()).to_dict() == expected
    assert parse_message("\ufeff" + mixed).to_dict() == expected
    assert parse_message(b"\x0b" + _msg(RDE).encode() + b"\x1c\r").to_dict() == expected


def test_non_standard_encoding_characters():
    text = "\r".join([
        "MSH$%~\\&$APP$FAC$RCV$RFAC$20240101$$ADT%A01$C1$P$2.5",
        "PID$1$$77%%%HOSP%MR$$SMITH%JANE%Q$$19700102$F",
        "AL1$1$DA$7980%Penicillin%RXN$MO$Rash~Hives",
    ])
    record = parse_message(text)
    assert (record.message_type, record.sender) == ("ADT^A01", "APP^FAC")
    patient = record.patient
    assert (patient.family, patient.given, patient.identifiers[0].type) == ("SMITH", "JANE", "MR")
    assert record.allergies[0].reaction == ["Rash", "Hives"]


def test_explicit_nulls_are_empty():
    segments = RDE[:1] + ['PID|1||""||""^JO||""|""', 'PV1|1|""|||||||||||||||||""']
    record = parse_message(_msg(segments))
    assert (record.patient.family, record.patient.given, record.patient.birth_date, record.patient.sex) == (
        "", "JO", None, "")
    assert record.patient.identifiers == []
    assert (record.encounter.patient_class, record.encounter.visit_number) == ("", "")


def test_cp1252_bytes_are_decoded():
    raw = _msg(RDE).replace("O'NEIL", "O\u2019NEIL").encode("cp1252")
    assert b"O\x92NEIL" in raw
    record = parse_message(raw)
    assert record.patient.family == "O\u2019NEIL"
    assert any("cp1252" in w for w in record.warnings)


def test_utf8_bytes_are_decoded():
    raw = _msg(RDE).replace("O'NEIL", "MÜLLER").encode("utf-8")
    record = parse_message(raw)
    assert record.patient.family == "MÜLLER"
    assert not any("cp1252" in w for w in record.warnings)


@pytest.mark.parametrize(
    ("escaped", "text"),
    [("A\\T\\B", "A&B"), ("A\\F\\B", "A|B"), ("A\\S\\B", "A^B"), ("A\\R\\B", "A~B"), ("A\\E\\B", "A\\B"),
     ("\\H\\BOLD\\N\\ text", "BOLD text"), ("line1\\.br\\line2", "line1\nline2"), ("\\X41424344\\", "ABCD"),
     ("caf\\XC3A9\\", "café"), ("a\\.sp2\\x", "a\n\nx"), ("keep \\Zcustom\\ as is", "keep \\Zcustom\\ as is"),
     ("unterminated \\T", "unterminated \\T")],
)
def test_escape_sequences(escaped, text):
    segments = RDE[:2] + ["NTE|1", f"OBX|1|ST|X1^Note^L||{escaped}"]
    record = parse_message(_msg(segments).replace("RDE^O11^RDE_O11", "ORU^R01^ORU_R01"))
    assert record.lab_results[0].value == text


def test_escape_in_drug_name_and_custom_escape_character():
    segments = ["MSH|^~#&|A|B|C|D|20240101||RDE^O11|X1|P|2.5", "ORC|NW", "RXE||1^Salt #T# pepper^L|1||mg"]
    assert parse_message(_msg(segments)).medications[0].name == "Salt & pepper"


@pytest.mark.parametrize(
    ("msh", "words"),
    [
        ("MSH", ("MSH-1", "missing")),
        ("MSHA^~\\&|", ("MSH-1",)),
        ("MSH||A|B", ("MSH-2", "missing")),
        ("MSH|^~|A", ("MSH-2", "incomplete")),
        ("MSH|^~\\&#$|A", ("MSH-2", "too many")),
        ("MSH|^^\\&|A", ("MSH-2", "duplicate")),
        ("MSH|^~|&|A", ("MSH-2",)),
        ("MSH|^~ &|A", ("MSH-2",)),
        ("MSH|^~\\&|A|B|C|D|20240101||^A01|1|P|2.5", ("MSH-9",)),
        ("MSH|^~\\&|A|B|C|D|20240101", ("MSH-9",)),
        ("PID|1||123", ("no MSH",)),
        ("", ("no MSH",)),
        ("hello world", ("no MSH",)),
    ],
)
def test_malformed_headers_are_refused_with_field_name(msh, words):
    with pytest.raises(ClinicalParseError) as excinfo:
        read_hl7v2(msh)
    for word in words:
        assert word in str(excinfo.value)


def test_truncation_character_is_accepted():
    record = parse_message("MSH|^~\\&#|A|B|C|D|20240101||ADT^A01|1|P|2.7\rPID|1||1^^^H^MR||X^Y")
    assert record.patient.family == "X"


def test_malformed_message_in_batch_names_its_position():
    batch = _msg(RDE) + "\rMSH|^^\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5\r"
    with pytest.raises(ClinicalParseError, match="message 2 of 2: MSH-2"):
        read_hl7v2(batch)


def test_wrong_input_type():
    with pytest.raises(ClinicalParseError):
        read_hl7v2(12345)  # type: ignore[arg-type]


# -- Batches and split_messages ----------------------------------------------------------------


def test_batch_envelope_unwrapped_and_counts_checked():
    m1, m2 = _msg(RDE), _msg(A03)
    data = f"FHS|^~\\&|X\rBHS|^~\\&|X\r{m1}\r{m2}\rBTS|2\rFTS|1\r"
    records = read_hl7v2(data)
    assert [r.control_id for r in records] == ["MSG0001", "DIS001"]
    assert not any("BTS" in w or "FTS" in w for r in records for w in r.warnings)
    wrong = f"BHS|^~\\&|X\r{m1}\r{m2}\rBTS|5\r"
    assert any("BTS-1 says 5" in w for w in read_hl7v2(wrong)[-1].warnings)


def test_split_messages_normalises_to_cr():
    data = "\ufeff" + "\n".join(RDE) + "\r\n" + "\r\n".join(A03)
    parts = split_messages(data)
    assert len(parts) == 2
    assert parts[0] == "\r".join(RDE) + "\r"
    assert parts[1] == "\r".join(A03) + "\r"
    assert all("\n" not in p for p in parts)
    assert split_messages(b"BHS|^~\\&\rMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rBTS|1") == [
        "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r"]
    with pytest.raises(ClinicalParseError):
        split_messages("BHS|^~\\&\rPID|1\rBTS|1")


# -- message_header ----------------------------------------------------------------------------


def test_message_header_without_full_parse():
    header = message_header("\n".join(A03) + "\nGARBAGE LINE THAT IS NOT A SEGMENT")
    assert header["type"] == "ADT^A03"
    assert header["structure"] == "ADT_A03"
    assert header["control_id"] == "DIS001"
    assert header["sender"] == "EHR^HOSP"
    assert header["receiver"] == "RXHUB^PHARM"
    assert header["version"] == "2.5.1"
    assert header["sent_at"] == datetime(2024, 3, 5, 12, 0)
    assert message_header(b"\xef\xbb\xbf" + _msg(RDE).encode())["control_id"] == "MSG0001"
    with pytest.raises(ClinicalParseError, match="MSH-2"):
        message_header("MSH|^^\\&|A")
    with pytest.raises(ClinicalParseError):
        message_header("PID|1")


# -- build_ack ---------------------------------------------------------------------------------

NOW = datetime(2024, 3, 5, 12, 30, 0)


def _segments(ack: str) -> list[list[str]]:
    assert ack.endswith("\r")
    return [s.split("|") for s in ack.rstrip("\r").split("\r")]


def test_ack_accept():
    ack = build_ack(_msg(A03), "AA", control_id="ACK1", now=NOW)
    msh, msa = _segments(ack)
    assert msh[:12] == ["MSH", "^~\\&", "RXHUB", "PHARM", "EHR", "HOSP", "20240305123000", "", "ACK^A03^ACK",
                        "ACK1", "P", "2.5.1"]
    assert msa == ["MSA", "AA", "DIS001"]
    reread = parse_message(ack)
    assert reread.message_type == "ACK^A03"


def test_ack_error_text_is_escaped_and_err_segment_added():
    ack = build_ack(_msg(RDE).encode(), "AE", "Unknown drug | code ^197361", control_id="A2", now=NOW)
    msh, msa, err = _segments(ack)
    assert msh[2:6] == ["RXHUB", "STORE1", "PHARM", "GENHOSP"]
    assert msa[:3] == ["MSA", "AE", "MSG0001"]
    assert msa[3] == "Unknown drug \\F\\ code \\S\\197361"
    assert err[0] == "ERR" and err[3] == "207^Application internal error^HL70357" and err[4] == "E"
    assert err[8] == "Unknown drug \\F\\ code \\S\\197361"


def test_ack_reject_for_unreadable_message_does_not_raise():
    ack = build_ack("MSH|^^\\&|SENDER|FAC|ME|MYFAC|20240101||ADT^A01|CTRL9|P|2.5", "AR",
                    "MSH-2: encoding characters contain duplicate characters", error_code="102", now=NOW)
    msh, msa, err = _segments(ack)
    assert msh[4:6] == ["SENDER", "FAC"]
    assert msa[:3] == ["MSA", "AR", "CTRL9"]
    assert err[3] == "102^Data type error^HL70357"
    garbage = build_ack(b"\x00\xff not hl7", "AR", "no MSH segment")
    assert _segments(garbage)[1][:3] == ["MSA", "AR", ""]


def test_ack_from_record_and_with_custom_delimiters():
    record = parse_message(_msg(A03))
    ack = build_ack(record, "AA", now=NOW, control_id="R1")
    msh, msa = _segments(ack)
    assert msh[4:6] == ["EHR", "HOSP"] and msh[8] == "ACK^A03^ACK"
    assert msa == ["MSA", "AA", "DIS001"]
    custom = build_ack("MSH$%~\\&$APP$FAC$RCV$RFAC$20240101$$ADT%A01$C1$P$2.5", "AA", now=NOW, control_id="Z")
    assert custom.startswith("MSH$%~\\&$RCV$RFAC$APP$FAC$20240305123000$$ACK%A01%ACK$Z$P$2.5\r")
    assert "MSA$AA$C1" in custom


def test_ack_generates_control_id_and_rejects_bad_code():
    ack = build_ack(_msg(RDE), "AA")
    control = _segments(ack)[0][9]
    assert control and len(control) <= 20
    with pytest.raises(ValueError):
        build_ack(_msg(RDE), "XX")


# -- Property tests: garbage in, only ClinicalParseError out -----------------------------------

_HL7ISH = st.text(alphabet=st.sampled_from(list("MSHPIDOBXRXEAL1|^~\\&#\"\r\n 0123456789ABC.-+$%TFX")),
                  max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), _HL7ISH))
def test_garbage_only_raises_clinical_parse_error(data):
    try:
        records = read_hl7v2(data)
    except ClinicalParseError:
        return
    assert all(isinstance(r, ClinicalRecord) for r in records)


_FIELD = st.text(alphabet=st.sampled_from(list("abcXYZ019 ^~\\&\"#.-/:PRNBIDQH")), max_size=25)
_SEGMENT_IDS = st.sampled_from(["PID", "PV1", "AL1", "IAM", "DG1", "PRB", "ORC", "RXE", "RXO", "RXD", "RXR",
                                "RXC", "TQ1", "OBR", "OBX", "RXA", "NTE", "BHS", "BTS", "FHS", "FTS", "ZZ1"])


@st.composite
def _messages(draw):
    msh_type = draw(st.sampled_from(["ADT^A03", "RDE^O11", "ORU^R01", "VXU^V04", "ADT", "^A01", ""]))
    msh = f"MSH|^~\\&|{draw(_FIELD)}|F|R|RF|{draw(_FIELD)}||{msh_type}|{draw(_FIELD)}|P|2.5"
    segments = [msh]
    for _ in range(draw(st.integers(0, 8))):
        seg_id = draw(_SEGMENT_IDS)
        fields = draw(st.lists(_FIELD, max_size=30))
        segments.append("|".join([seg_id, *fields]))
    sep = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    return sep.join(segments)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages())
def test_random_segments_only_raise_clinical_parse_error(text):
    try:
        records = read_hl7v2(text)
    except ClinicalParseError:
        return
    for record in records:
        assert record.to_dict()["format"] == "hl7v2"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), _messages()),
       st.sampled_from(["AA", "AE", "AR"]), st.text(max_size=50))
def test_build_ack_never_fails_on_garbage(data, code, error):
    ack = build_ack(data, code, error)
    assert ack.startswith("MSH") and "\rMSA" in ack
    assert parse_message(ack).message_type.startswith("ACK")
