"""POST /api/v1/fhir/ is strict where FHIR R4 is strict: a code outside a required binding or a
malformed primitive is answered 400 with an OperationOutcome whose expression names the element
(R4 §2.1.0.4 required bindings; §2.24.0.1 primitive types) — and the payload is stored first."""
from __future__ import annotations

import json

import pytest

from reconciliation.models import InboundMessage

PATIENT = {"reference": "Patient/p1"}
MR = {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": PATIENT,
      "medicationCodeableConcept": {"text": "amoxicillin 500 mg capsule"}}
MS = {"resourceType": "MedicationStatement", "status": "active", "subject": PATIENT,
      "medicationCodeableConcept": {"text": "lisinopril 10 mg tablet"}}
MD = {"resourceType": "MedicationDispense", "status": "completed", "subject": PATIENT,
      "medicationCodeableConcept": {"text": "metformin 500 mg tablet"}}
AI = {"resourceType": "AllergyIntolerance", "patient": PATIENT, "code": {"text": "penicillin"},
      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                     "code": "active"}]}}


def _with(base: dict, **changes) -> dict:
    out = json.loads(json.dumps(base))
    out.update(changes)
    return out


# (resource, expression) — one per required binding the issue lists, then malformed primitives.
REFUSED = [
    (_with(MR, status="bogus"), "MedicationRequest.status"),
    (_with(MR, intent="wish"), "MedicationRequest.intent"),
    (_with(MS, status="taking"), "MedicationStatement.status"),
    (_with(MD, status="done"), "MedicationDispense.status"),
    (_with(AI, clinicalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                     "allergyintolerance-clinical", "code": "current"}]}),
     "AllergyIntolerance.clinicalStatus.coding[0].code"),
    (_with(AI, verificationStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                         "allergyintolerance-verification", "code": "maybe"}]}),
     "AllergyIntolerance.verificationStatus.coding[0].code"),
    (_with(AI, criticality="extreme"), "AllergyIntolerance.criticality"),
    (_with(AI, type="sensitivity"), "AllergyIntolerance.type"),
    (_with(AI, category=["medication", "drug"]), "AllergyIntolerance.category[1]"),
    (_with(MR, authoredOn="not-a-date"), "MedicationRequest.authoredOn"),
    (_with(MR, authoredOn="2024-13-01"), "MedicationRequest.authoredOn"),
    (_with(MS, effectiveDateTime="yesterday"), "MedicationStatement.effectiveDateTime"),
    (_with(MR, meta={"lastUpdated": "2024-01-01"}), "MedicationRequest.meta.lastUpdated"),  # instant
    (_with(MR, doNotPerform="false"), "MedicationRequest.doNotPerform"),  # boolean as a string
    (_with(MR, dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": "1", "unit": "tab"}}]}]),
     "MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity.value"),  # decimal as a string
    ({"resourceType": "Patient", "birthDate": "01/02/1980"}, "Patient.birthDate"),
]


@pytest.mark.parametrize(("resource", "expression"), REFUSED, ids=[e for _, e in REFUSED])
def test_fhir_input_outside_the_standard_is_a_400_naming_the_element(db, api_client_for, resource, expression):
    client = api_client_for("integrator")
    response = client.post("/api/v1/fhir/", data=json.dumps(resource), content_type="application/fhir+json")
    assert response.status_code == 400, response.content
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]
    assert outcome["issue"][0]["severity"] == "error"
    # stored before it was refused
    stored = InboundMessage.objects.get()
    assert stored.status == "rejected" and expression in stored.error


def test_bundle_entries_are_named_by_their_path(db, api_client_for):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": MS}, {"resource": _with(MR, status="bogus")}]}
    response = api_client_for("integrator").post("/api/v1/fhir/", data=json.dumps(bundle),
                                                 content_type="application/fhir+json")
    assert response.status_code == 400
    assert json.loads(response.content)["issue"][0]["expression"] == ["Bundle.entry[1].resource.status"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-le"])
def test_json_in_utf8_bom_utf16_utf32_is_read(db, api_client_for, encoding):
    body = json.dumps(_with(MS, extension=[{"url": "http://example.org/unknown", "valueString": "x"}]),
                      ensure_ascii=False).encode(encoding)
    response = api_client_for("integrator").post("/api/v1/fhir/", data=body, content_type="application/fhir+json")
    assert response.status_code == 201, response.content


def test_r4_only_content_and_unknown_extensions_stay_readable():
    from pharmacy.interop.fhir import read_fhir

    resource = _with(MS, extension=[{"url": "http://example.org/x", "valueDateTime": "whenever"}],
                     modifierExtension=[], reasonCode=[{"text": "hypertension"}], statusReason=[{"text": "x"}],
                     dateAsserted="2020-01-01T10:00:00Z", informationSource={"display": "patient"})
    resource.pop("modifierExtension")
    record = read_fhir(resource)
    assert record.medications[0].name == "lisinopril 10 mg tablet"
