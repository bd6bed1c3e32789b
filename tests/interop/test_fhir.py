"""Unit tests for the FHIR R4 reader and builders (pure, no database)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.operationoutcome import OperationOutcome

from pharmacy.interop.clinical import ClinicalParseError
from pharmacy.interop.fhir import (
    build_communication,
    build_medication_dispense,
    normalise_route,
    operation_outcome,
    read_fhir,
    strength_from_name,
)
from pharmacy.interop.sig import frequency_from_timing, normalize_frequency


@pytest.fixture(autouse=True)
def _plain_http():
    """Shadow tests/conftest.py's autouse Django-settings fixture: these tests are pure (-p no:django)."""
    yield


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:oid:1.2.3",
            "value": "MRN-1",
            "assigner": {"display": "General Hospital"},
        },
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-1234"},
    ],
    "name": [{"use": "old", "family": "Old"}, {"use": "official", "family": "Rivera", "given": ["Ana", "M"]}],
    "gender": "female",
    "birthDate": "1960-02-29",
}

LISINOPRIL = {
    "resourceType": "Medication",
    "id": "lis10",
    "code": {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/ndc", "code": "68180-0513-01"},
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "314076",
                "display": "lisinopril 10 MG Oral Tablet",
            },
        ]
    },
    "ingredient": [
        {
            "itemCodeableConcept": {"text": "lisinopril"},
            "strength": {
                "numerator": {"value": 10, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
                "denominator": {"value": 1, "unit": "TAB"},
            },
        }
    ],
}


def _request(med_ref: str, **extra) -> dict:
    resource = {
        "resourceType": "MedicationRequest",
        "id": "rx1",
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": med_ref},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2024-03-01",
        "requester": {"reference": "Practitioner/dr1"},
        "dosageInstruction": [
            {
                "text": "Take 1 tablet by mouth twice daily",
                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                "route": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}
                    ]
                },
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
            }
        ],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 5,
            "quantity": {"value": 60, "unit": "tablet"},
            "expectedSupplyDuration": {
                "value": 30,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        },
    }
    resource.update(extra)
    return resource


def _bundle(*entries: tuple[str, dict], bundle_type: str = "collection") -> dict:
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [{"fullUrl": url, "resource": res} if url else {"resource": res} for url, res in entries],
    }


# ---------------------------------------------------------------------------------------------
# medicationReference resolution
# ---------------------------------------------------------------------------------------------


def test_medication_reference_resolves_to_bundle_medication_by_type_and_id():
    practitioner = {
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"family": "House", "given": ["Greg"]}],
    }
    bundle = _bundle(
        ("http://example.org/fhir/Patient/p1", PATIENT),
        ("http://example.org/fhir/MedicationRequest/rx1", _request("Medication/lis10")),
        ("http://example.org/fhir/Medication/lis10", LISINOPRIL),
        ("http://example.org/fhir/Practitioner/dr1", practitioner),
    )
    record = read_fhir(json.dumps(bundle).encode())
    assert record.format == "fhir" and record.message_type == "Bundle"
    assert len(record.medications) == 1  # the Medication itself is not a second entry
    med = record.medications[0]
    assert (med.code, med.code_system) == ("314076", "rxnorm")  # RxNorm preferred over NDC
    assert med.name == "lisinopril 10 MG Oral Tablet"
    assert med.strength == "10 mg"
    assert med.dose == "1 tablet"
    assert med.route == "oral"
    assert med.frequency == "bid"
    assert med.refills == 5 and med.days_supply == 30 and med.quantity == "60 tablet"
    assert med.start_date == date(2024, 3, 1)
    assert med.prescriber == "Greg House"  # resolved from the bundle's Practitioner
    assert med.sig == "Take 1 tablet by mouth twice daily"
    assert record.patient is not None and record.patient.family == "Rivera"


def test_medication_reference_resolves_by_full_url_uuid_and_absolute_url():
    uuid = "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"
    record = read_fhir(_bundle((None, _request(uuid)), (uuid, LISINOPRIL)))
    assert record.medications[0].code == "314076"

    record = read_fhir(
        _bundle(
            (None, _request("https://other.example/fhir/Medication/lis10/_history/3")),
            ("https://other.example/fhir/Medication/lis10", LISINOPRIL),
        )
    )
    assert record.medications[0].code == "314076"


def test_contained_medication_reference():
    request = _request("#m1", contained=[dict(LISINOPRIL, id="m1")])
    record = read_fhir(request)
    assert record.message_type == "MedicationRequest"
    med = record.medications[0]
    assert med.code == "314076" and med.strength == "10 mg"
    assert record.warnings == []


def test_unresolved_reference_is_a_warning_and_keeps_display():
    request = _request("Medication/missing")
    request["medicationReference"]["display"] = "Lisinopril 10 mg tab"
    record = read_fhir(request)
    med = record.medications[0]
    assert med.text == "Lisinopril 10 mg tab" and med.code == ""
    assert med.strength == "10 mg"  # from the text the sender wrote
    assert any("Medication/missing" in w for w in record.warnings)


def test_dispense_prescriber_comes_from_authorizing_prescription_in_bundle():
    request = _request(
        "#m1",
        contained=[dict(LISINOPRIL, id="m1")],
        requester={"reference": "Practitioner/x", "display": "Dr Who"},
    )
    dispense = {
        "resourceType": "MedicationDispense",
        "id": "d1",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Lisinopril 10mg tablet"},
        "authorizingPrescription": [{"reference": "MedicationRequest/rx1"}],
        "quantity": {"value": 30, "unit": "TAB"},
        "daysSupply": {"value": 4, "unit": "wk", "code": "wk"},
        "whenHandedOver": "2024-03-02T10:00:00-05:00",
    }
    record = read_fhir(_bundle((None, dispense), (None, request), bundle_type="searchset"))
    disp = next(m for m in record.medications if m.source == "MedicationDispense/d1")
    assert disp.prescriber == "Dr Who"
    assert disp.days_supply == 28
    assert disp.start_date == date(2024, 3, 2)
    assert disp.strength == "10 mg"


# ---------------------------------------------------------------------------------------------
# R4 vs R4B, errors
# ---------------------------------------------------------------------------------------------


def test_r4_only_json_is_read_even_though_r4b_rejects_it():
    # MedicinalProduct exists in R4 (4.0.1) but was removed in R4B, so the R4B Bundle model rejects this.
    r4_only = {"resourceType": "MedicinalProduct", "id": "mp1", "name": [{"productName": "Lisinopril 10 mg"}]}
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "medicationCodeableConcept": {"text": "lisinopril 10 mg daily"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2023-05-01",
        "dosage": [{"text": "1 daily", "asNeededBoolean": False}],
    }
    bundle = _bundle((None, r4_only), (None, statement), (None, PATIENT))
    from fhir.resources.R4B.bundle import Bundle

    with pytest.raises(Exception):  # noqa: B017 - any validation failure proves the point
        Bundle.model_validate(bundle)
    record = read_fhir(json.dumps(bundle))
    assert [m.text for m in record.medications] == ["lisinopril 10 mg daily"]
    assert record.medications[0].frequency == "daily"
    assert record.medications[0].strength == "10 mg"
    assert record.patient.given == "Ana M"
    assert any(w.startswith("R4B validation") for w in record.warnings)


def test_valid_r4_has_no_validation_warning():
    record = read_fhir(PATIENT)
    assert record.warnings == []


def test_invalid_json_is_refused():
    with pytest.raises(ClinicalParseError, match="not valid JSON"):
        read_fhir(b'{"resourceType": "Patient", ')
    with pytest.raises(ClinicalParseError, match="must be UTF-8"):
        read_fhir(b'{"resourceType": "Patient", "id": "\xff"}')
    with pytest.raises(ClinicalParseError, match="empty"):
        read_fhir(b"  \n")
    with pytest.raises(ClinicalParseError, match="top-level JSON is list"):
        read_fhir(b"[1, 2]")


def test_missing_resource_type_names_the_element():
    with pytest.raises(ClinicalParseError, match="missing resourceType"):
        read_fhir({"id": "x"})
    bundle = _bundle(
        (None, PATIENT),
        (None, LISINOPRIL),
        (None, _request("Medication/lis10")),
        (None, {"id": "no-type", "status": "active"}),
    )
    with pytest.raises(ClinicalParseError) as err:
        read_fhir(bundle)
    assert str(err.value) == "Bundle.entry[3].resource: missing resourceType"


def test_bad_structures_name_the_element():
    with pytest.raises(ClinicalParseError, match=r"^Bundle\.entry: expected an array"):
        read_fhir({"resourceType": "Bundle", "type": "collection", "entry": {"resource": PATIENT}})
    with pytest.raises(ClinicalParseError, match=r"^Bundle\.entry\[0\]: expected a JSON object"):
        read_fhir({"resourceType": "Bundle", "type": "collection", "entry": ["x"]})
    with pytest.raises(
        ClinicalParseError, match=r"^Bundle\.entry\[0\]\.resource\.entry\[1\]\.resource: missing"
    ):
        inner = _bundle((None, PATIENT), (None, {"status": "x"}), bundle_type="searchset")
        read_fhir(_bundle((None, inner), bundle_type="batch-response"))
    with pytest.raises(ClinicalParseError, match=r"^Practitioner: unsupported resourceType"):
        read_fhir({"resourceType": "Practitioner", "id": "x"})
    with pytest.raises(ClinicalParseError, match="resourceType: invalid value"):
        read_fhir({"resourceType": 12})
    with pytest.raises(ClinicalParseError, match="OperationOutcome: the sender returned an error: boom"):
        read_fhir(operation_outcome("boom"))
    with pytest.raises(ClinicalParseError, match="FHIR XML is not supported"):
        read_fhir('<Patient xmlns="http://hl7.org/fhir"/>')


def test_operation_outcome_is_valid_r4b_and_names_the_expression():
    try:
        read_fhir(_bundle((None, PATIENT), (None, {"id": "x"})))
    except ClinicalParseError as exc:
        outcome = operation_outcome(str(exc))
    OperationOutcome.model_validate(outcome)
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert issue["expression"] == ["Bundle.entry[1].resource"]
    assert issue["diagnostics"] == "Bundle.entry[1].resource: missing resourceType"

    plain = operation_outcome("not valid JSON: Expecting value at line 1 column 1")
    OperationOutcome.model_validate(plain)
    assert "expression" not in plain["issue"][0]
    explicit = operation_outcome("bad", expression="Patient.birthDate")
    assert explicit["issue"][0]["expression"] == ["Patient.birthDate"]


def test_bytes_with_bom_and_dict_input():
    data = b"\xef\xbb\xbf" + json.dumps(PATIENT).encode()
    assert read_fhir(data).patient.family == "Rivera"
    assert read_fhir(PATIENT).patient.family == "Rivera"


# ---------------------------------------------------------------------------------------------
# Patients, allergies, problems, labs, encounters, lists
# ---------------------------------------------------------------------------------------------


def test_patient_fields():
    p = read_fhir(PATIENT).patient
    assert (p.family, p.given, p.birth_date, p.sex) == ("Rivera", "Ana M", date(1960, 2, 29), "F")
    assert [(i.value, i.type, i.assigning_authority) for i in p.identifiers] == [
        ("MRN-1", "MR", "General Hospital"),
        ("999-00-1234", "", "http://hl7.org/fhir/sid/us-ssn"),
    ]


@pytest.mark.parametrize(("code", "nkda"), [("716186003", True), ("409137002", True), ("428607008", False),
                                           ("429625007", False), ("428197003", False), ("1003774007", False)])
def test_no_known_allergy_codes_set_flag_and_add_no_entry(code, nkda):
    nka = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "patient": {"reference": "Patient/p1"},
    }
    record = read_fhir(nka)
    # only "no known allergy" / "no known drug allergy" mean NKDA; food, environmental, insect, latex don't
    assert record.no_known_allergies is nkda
    assert record.allergies == []


def test_refuted_nka_does_not_set_flag_and_refuted_allergy_is_negated():
    nka = {
        "resourceType": "AllergyIntolerance",
        "verificationStatus": {"coding": [{"code": "refuted"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "716186003"}]},
        "patient": {"reference": "Patient/p1"},
    }
    assert read_fhir(nka).no_known_allergies is False
    refuted = {
        "resourceType": "AllergyIntolerance",
        "verificationStatus": {"coding": [{"code": "refuted"}]},
        "code": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "7980",
                    "display": "Penicillin G",
                }
            ]
        },
        "patient": {"reference": "Patient/p1"},
    }
    allergy = read_fhir(refuted).allergies[0]
    assert allergy.negated is True and allergy.substance == "Penicillin G"
    in_error = dict(refuted, verificationStatus={"coding": [{"code": "entered-in-error"}]})
    assert read_fhir(in_error).allergies == []


def test_allergy_reactions_severity_and_category():
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "category": ["medication"],
        "criticality": "low",
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}
            ],
            "text": "penicillin",
        },
        "patient": {"reference": "Patient/p1"},
        "reaction": [
            {"manifestation": [{"text": "Hives"}, {"coding": [{"display": "Rash"}]}], "severity": "mild"},
            {"manifestation": [{"coding": [{"display": "Hives"}]}], "severity": "moderate"},
        ],
    }
    a = read_fhir(allergy).allergies[0]
    assert (a.substance, a.code, a.code_system, a.category) == ("penicillin", "91936005", "snomed", "drug")
    assert a.reaction == ["Hives", "Rash"]
    assert a.severity == "moderate"  # the worst reaction
    assert a.criticality == "low"  # a separate field: risk of a future critical reaction
    assert a.status == "active"
    del allergy["reaction"]
    a = read_fhir(allergy).allergies[0]
    assert (a.severity, a.criticality) == ("", "low")  # criticality is never turned into a severity


def test_conditions_observations_encounter():
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "44054006",
                    "display": "Diabetes mellitus type 2",
                },
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "Type 2 DM"},
            ]
        },
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2019-06-01",
    }
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-01-05T08:00:00Z",
        "valueQuantity": {"value": 7.2, "unit": "%"},
        "interpretation": [{"coding": [{"code": "H"}]}],
        "referenceRange": [{"low": {"value": 4, "unit": "%"}, "high": {"value": 5.6, "unit": "%"}}],
    }
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [{"value": "V123"}],
        "period": {"start": "2024-01-03T10:00:00Z", "end": "2024-01-06T12:00:00Z"},
        "serviceProvider": {"display": "General Hospital"},
    }
    record = read_fhir(_bundle((None, condition), (None, observation), (None, encounter)))
    problem = record.problems[0]
    assert (problem.code, problem.code_system, problem.onset) == ("E11.9", "icd10cm", date(2019, 6, 1))
    lab = record.lab_results[0]
    assert (lab.code, lab.code_system, lab.value, lab.unit, lab.abnormal_flag) == (
        "4548-4",
        "loinc",
        "7.2",
        "%",
        "H",
    )
    assert lab.reference_range == "4-5.6 %"
    assert lab.observed_at == datetime(2024, 1, 5, 8, 0, tzinfo=UTC)
    enc = record.encounter
    assert (enc.patient_class, enc.visit_number, enc.facility) == ("I", "V123", "General Hospital")
    assert enc.discharge_at == datetime(2024, 1, 6, 12, 0, tzinfo=UTC)


def test_list_with_contained_items_and_empty_allergy_list():
    lst = {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "contained": [
            _request("#m1", id="r1", contained=[dict(LISINOPRIL, id="m1")]),
            {
                "resourceType": "MedicationStatement",
                "id": "s1",
                "status": "active",
                "medicationCodeableConcept": {"text": "aspirin 81 mg"},
                "subject": {"reference": "Patient/p1"},
            },
            {
                "resourceType": "MedicationStatement",
                "id": "s2",
                "status": "stopped",
                "medicationCodeableConcept": {"text": "old drug"},
                "subject": {"reference": "Patient/p1"},
            },
        ],
        "entry": [
            {"item": {"reference": "#r1"}},
            {"item": {"reference": "#s1"}},
            {"item": {"reference": "#s2"}, "deleted": True},
            {"item": {"reference": "#gone"}},
        ],
    }
    record = read_fhir(lst)
    assert [m.source for m in record.medications] == ["MedicationRequest/r1", "MedicationStatement/s1"]
    assert record.medications[1].strength == "81 mg"
    assert any("#gone" in w for w in record.warnings)

    empty = {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "code": {"coding": [{"system": "http://loinc.org", "code": "48765-2"}]},
        "emptyReason": {"coding": [{"code": "nilknown"}]},
    }
    assert read_fhir(empty).no_known_allergies is True


def test_not_taken_statement_is_negated():
    statement = {
        "resourceType": "MedicationStatement",
        "status": "not-taken",
        "medicationCodeableConcept": {"text": "warfarin"},
        "subject": {"reference": "Patient/p1"},
    }
    assert read_fhir(statement).medications[0].negated is True


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "daily"),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, "tid"),
        ({"repeat": {"frequency": 1, "period": 4, "periodMax": 6, "periodUnit": "h"}}, "q4-6h"),
        ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, "q8h"),
        ({"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, "qod"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, "weekly"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}}, "qhs"),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d", "when": ["AC"]}}, "tid ac"),
        ({"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}, "qid"),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}}, "tiw"),
        ({"repeat": {"frequency": 2, "frequencyMax": 3, "period": 1, "periodUnit": "d"}}, "bid-tid"),
        ({"code": {"coding": [{"code": "BID"}]}}, "bid"),
        ({"code": {"coding": [{"code": "Q6H"}]}}, "q6h"),
        ({}, ""),
    ],
)
def test_frequency_from_timing(timing, expected):
    assert frequency_from_timing(timing) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("take 1 tab by mouth twice daily", "bid"),
        ("1 tablet every four hours as needed", "q4h"),
        ("2 puffs q6h prn", "q6h"),
        ("one at bedtime", "qhs"),
        ("TID with meals", "tid with meals"),
        ("1 tablet per day", "daily"),
        ("as directed", ""),
    ],
)
def test_dosage_text_frequency_is_the_sig_parsers(text, expected):
    assert normalize_frequency(text) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lisinopril 10 MG Oral Tablet", "10 mg"),
        ("Phenytoin 25mg/ml oral suspension", "25 mg/mL"),
        ("4 ML bevacizumab 25 MG/ML Injection", "25 mg/mL"),
        ("Amoxicillin 250mg/5ml Suspension", "250 mg/5 mL"),
        ("albuterol 0.09 MG/ACTUAT [Proventil]", "0.09 mg/actuat"),
        ("Vicodin 5mg Hydrocodone, 500mg Acetaminophen tablet", "5 mg / 500 mg"),
        ("Sodium Chloride 0.9% injectable solution", "0.9%"),
        ("Tylenol PM", ""),
    ],
)
def test_strength_from_name(name, expected):
    assert strength_from_name(name) == expected


def test_normalise_route():
    assert normalise_route("Oral Route (qualifier value)") == "oral"
    assert normalise_route("Intravenous Route of Administration") == "intravenous"
    assert normalise_route("", "C38288") == "oral"
    assert normalise_route("", "") == ""


# ---------------------------------------------------------------------------------------------
# Builders (validated against the R4B models)
# ---------------------------------------------------------------------------------------------


def test_build_medication_dispense_validates_with_r4b():
    resource = build_medication_dispense(
        dispense_id="disp-1",
        patient_ref="Patient/p1",
        medication_code="00093-7180-01",
        medication_system="ndc",
        medication_text="Lisinopril 10 mg tablet",
        quantity=30,
        unit="TAB",
        days_supply=30,
        when_handed_over=datetime(2024, 3, 2, 15, 30, tzinfo=UTC),
        prescription_ref="MedicationRequest/rx1",
        pharmacy_name="Main Street Pharmacy",
    )
    model = MedicationDispense.model_validate(resource)
    assert model.status == "completed"
    assert resource["medicationCodeableConcept"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/ndc"
    assert resource["daysSupply"]["value"] == 30 and resource["quantity"]["value"] == 30
    assert resource["authorizingPrescription"] == [{"reference": "MedicationRequest/rx1"}]
    assert resource["performer"][0]["actor"]["display"] == "Main Street Pharmacy"
    assert resource["whenHandedOver"] == "2024-03-02T15:30:00+00:00"
    json.dumps(resource)  # JSON-ready
    # and the reader reads it back
    med = read_fhir(resource).medications[0]
    assert (med.code, med.code_system, med.days_supply, med.quantity) == (
        "00093-7180-01",
        "ndc",
        30,
        "30 TAB",
    )


def test_build_medication_dispense_optional_parts_and_errors():
    resource = build_medication_dispense(
        dispense_id="disp-2",
        patient_ref="Patient/p1",
        medication_code="",
        medication_system="",
        medication_text="Compounded cream",
        quantity="12.5",
        unit="g",
        days_supply=None,
        when_handed_over=date(2024, 3, 2),
        prescription_ref=None,
        pharmacy_name="",
    )
    MedicationDispense.model_validate(resource)
    assert resource["quantity"]["value"] == 12.5 and "daysSupply" not in resource
    with pytest.raises(ValueError, match="timezone-aware"):
        build_medication_dispense(
            dispense_id="d",
            patient_ref="Patient/p1",
            medication_code="1",
            medication_system="rxnorm",
            medication_text="x",
            quantity=1,
            unit="",
            days_supply=1,
            when_handed_over=datetime(2024, 1, 1, 9),
            prescription_ref=None,
            pharmacy_name="",
        )
    with pytest.raises(ValueError, match="not valid FHIR R4B"):
        build_medication_dispense(
            dispense_id="bad id with spaces",
            patient_ref="Patient/p1",
            medication_code="1",
            medication_system="rxnorm",
            medication_text="x",
            quantity=1,
            unit="",
            days_supply=1,
            when_handed_over=date(2024, 1, 1),
            prescription_ref=None,
            pharmacy_name="",
        )


def test_build_communication_validates_with_r4b():
    resource = build_communication(
        communication_id="comm-1",
        patient_ref="Patient/p1",
        recipient_ref="Practitioner/dr1",
        text="Refill request for lisinopril 10 mg: please approve.",
        sent=datetime(2024, 3, 2, 9, 0, tzinfo=UTC),
    )
    model = Communication.model_validate(resource)
    assert model.payload[0].contentString.startswith("Refill request")
    assert resource["recipient"] == [{"reference": "Practitioner/dr1"}]
    assert resource["status"] == "completed"
    with pytest.raises(ValueError):
        build_communication(
            communication_id="c",
            patient_ref="Patient/p1",
            recipient_ref="",
            text="",
            sent=datetime(2024, 3, 2, tzinfo=UTC),
        )
