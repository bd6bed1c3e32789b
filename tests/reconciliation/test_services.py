"""Inbound store-first processing, patient matching, tasks, and acceptance applying exactly the
approved change (reconciliation/services.py)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from pharmacy.errors import TransitionNotAllowed
from pharmacy.models import Allergy, Diagnosis, LabResult, OutboxMessage, Prescription
from reconciliation import services
from reconciliation.models import Discrepancy, EhrLink, InboundMessage, PatientMatchItem, ReconciliationTask
from tests.factories import PatientFactory

from .conftest import a03, hl7

DATA = Path(__file__).parent / "data"


def state():
    """Everything acceptance could touch, to compare before and after."""
    return (sorted(Prescription.objects.values_list("id", "status", "drug_id")),
            sorted(Allergy.objects.values_list("id", "substance", "status")))


def test_discharge_over_hl7_opens_a_discharge_task_and_changes_nothing(linked_ada):
    before = state()
    result = services.ingest(channel="mllp", payload=a03())
    assert result.ack_code == "AA"
    message = result.message
    assert (message.status, message.message_type, message.control_id, message.sender) == (
        "processed", "ADT^A03", "CTRL0001", "EPIC^GENHOSP")
    task = ReconciliationTask.objects.get()
    assert (task.kind, task.status, task.patient_id) == ("discharge", "open", linked_ada.pk)
    found = sorted((d.kind, d.priority, d.action, d.prescription_id) for d in task.discrepancies.all())
    # warfarin 5 mg daily matches; metformin is new; lisinopril is not on the discharge list.
    assert found == [("missing_from_ehr", "MEDIUM", "hold", linked_ada.rx_lisinopril.pk),
                     ("new_in_ehr", "MEDIUM", "create_pending", None)]
    assert state() == before  # nothing changes before acceptance


def test_duplicate_control_id_is_stored_but_not_processed_twice(linked_ada):
    first = services.ingest(channel="mllp", payload=a03())
    second = services.ingest(channel="http_hl7", payload=a03())
    assert second.ack_code == "AA"
    assert second.message.status == "duplicate" and second.message.duplicate_of_id == first.message.pk
    assert InboundMessage.objects.count() == 2
    assert ReconciliationTask.objects.count() == 1
    # Another sender may reuse the control ID: that is a different message.
    third = services.ingest(channel="mllp", payload=a03(sender="CERNER"))
    assert third.message.status == "processed"


def test_failing_message_is_kept_then_retried(linked_ada, monkeypatch, pharmacist):
    from reconciliation.services import inbound

    real = inbound._store_problems

    def broken(*args, **kwargs):
        raise RuntimeError("diagnosis table locked")

    monkeypatch.setattr(inbound, "_store_problems", broken)
    result = services.ingest(channel="mllp", payload=a03())
    assert result.ack_code == "AE"
    message = InboundMessage.objects.get(pk=result.message.pk)
    assert message.status == "failed" and "diagnosis table locked" in message.error and message.attempts == 1
    assert ReconciliationTask.objects.count() == 0 and EhrLink.objects.count() == 1  # rolled back whole

    monkeypatch.setattr(inbound, "_store_problems", real)
    retried = services.inbound_retry(message_id=message.pk, actor=pharmacist)
    assert retried.status == "processed" and retried.error == "" and retried.attempts == 2
    assert ReconciliationTask.objects.count() == 1
    with pytest.raises(TransitionNotAllowed):
        services.inbound_retry(message_id=message.pk, actor=pharmacist)


def test_unreadable_header_is_stored_and_rejected(db):
    result = services.ingest(channel="mllp", payload="MSH|^~\\&\rPID|1||X")
    assert result.ack_code == "AR"
    assert result.message.status == "rejected" and "MSH-9" in result.message.error
    garbage = services.ingest(channel="http_hl7", payload=b"hello there")
    assert garbage.ack_code == "AR" and InboundMessage.objects.count() == 2


def test_unsupported_type_is_stored_and_marked(db):
    vxu = hl7("MSH|^~\\&|IIS|STATE|RXHUB|PHARM|20261130||VXU^V04^VXU_V04|V1|P|2.5.1",
              "PID|1||P1^^^STATE^MR||DOE^JANE||19800101|F")
    result = services.ingest(channel="mllp", payload=vxu)
    assert result.ack_code == "AA" and result.message.status == "unsupported"
    assert "VXU^V04" in result.message.error


def test_match_exact_by_mrn_at_the_patients_facility_records_a_link(ada):
    ada.facility.code = "GENHOSP"
    ada.facility.save()
    ada.mrn = "MRN12345"
    ada.save()
    message = services.ingest(channel="mllp", payload=a03()).message
    assert message.status == "processed" and message.summary["match"]["outcome"] == "exact"
    link = EhrLink.objects.get()
    assert (link.patient_id, link.ehr_system, link.external_id, link.match_outcome) == (
        ada.pk, "GENHOSP", "MRN12345", "exact")


def test_match_probable_by_name_birth_date_and_sex(ada):
    message = services.ingest(channel="mllp", payload=a03(mrn="OTHER1")).message
    assert message.status == "processed"
    assert message.summary["match"]["outcome"] == "probable" and message.patient_id == ada.pk
    assert message.summary["match"]["score"] == 1.0
    assert EhrLink.objects.get().external_id == "OTHER1"


def test_ambiguous_match_opens_an_item_and_a_person_resolves_it(ada, technician):
    twin = PatientFactory(first_name="Ada", last_name="Lovelace", birth_date=date(1960, 1, 5), sex="F")
    message = services.ingest(channel="mllp", payload=a03(mrn="OTHER2")).message
    assert message.status == "awaiting_match"
    item = PatientMatchItem.objects.get()
    assert item.outcome == "ambiguous" and {c["patient_id"] for c in item.candidates} == {ada.pk, twin.pk}
    assert ReconciliationTask.objects.count() == 0

    services.match_item_resolve(item_id=item.pk, patient_id=ada.pk, actor=technician)
    message.refresh_from_db()
    assert message.status == "processed" and message.patient_id == ada.pk
    assert EhrLink.objects.get(external_id="OTHER2").patient_id == ada.pk
    assert ReconciliationTask.objects.get().patient_id == ada.pk


def test_no_match_opens_an_item(db):
    message = services.ingest(channel="mllp", payload=a03(family="NOBODY", mrn="Z9")).message
    assert message.status == "awaiting_match"
    assert PatientMatchItem.objects.get().outcome == "none"


def test_ccda_discharge_summary_creates_a_discharge_task(linked_ada):
    payload = (DATA / "discharge_summary.xml").read_bytes()
    result = services.ingest(channel="http_document", payload=payload)
    assert result.ack_code == "AA" and result.message.status == "processed", result.message.error
    task = ReconciliationTask.objects.get()
    assert task.kind == "discharge" and task.source_format == "ccda"
    kinds = sorted((d.kind, d.priority) for d in task.discrepancies.all())
    assert kinds == [("dose_change", "HIGH"), ("missing_from_ehr", "MEDIUM"), ("new_allergy", "MEDIUM")]


def test_accepting_applies_exactly_the_approved_change(linked_ada, pharmacist):
    services.ingest(channel="mllp", payload=a03(allergies=("7980^Penicillin G^RXNORM",)))
    task = ReconciliationTask.objects.get()
    missing = task.discrepancies.get(kind="missing_from_ehr")
    new = task.discrepancies.get(kind="new_in_ehr")
    allergy = task.discrepancies.get(kind="new_allergy")
    rx_before = dict(Prescription.objects.values_list("id", "status"))
    allergies_before = Allergy.objects.count()

    services.discrepancy_accept(discrepancy_id=missing.pk, actor=pharmacist, note="confirmed with Dr Smith")
    after = dict(Prescription.objects.values_list("id", "status"))
    assert after == rx_before | {linked_ada.rx_lisinopril.pk: "on_hold"}  # that one row, that one field
    assert Allergy.objects.count() == allergies_before
    rx = Prescription.objects.get(pk=linked_ada.rx_lisinopril.pk)
    assert rx.history.first().history_change_reason.startswith(f"Reconciliation task {task.pk}")
    assert rx.history.first().history_user == pharmacist

    services.discrepancy_reject(discrepancy_id=new.pk, actor=pharmacist, note="hospital-only")
    assert dict(Prescription.objects.values_list("id", "status")) == after  # rejecting changes nothing
    task.refresh_from_db()
    assert task.status == "in_review"

    services.discrepancy_accept(discrepancy_id=allergy.pk, actor=pharmacist)
    added = Allergy.objects.get(patient=linked_ada)
    assert (added.substance, added.source, added.severity, added.drug_class) == (
        "Penicillin G", "ehr", "severe", "penicillin")
    task.refresh_from_db()
    assert task.status == "completed" and task.completed_by == pharmacist
    decided = {d.kind: (d.status, d.decided_by_id) for d in Discrepancy.objects.all()}
    assert decided == {"missing_from_ehr": ("accepted", pharmacist.pk), "new_in_ehr": ("rejected", pharmacist.pk),
                       "new_allergy": ("accepted", pharmacist.pk)}
    with pytest.raises(TransitionNotAllowed):
        services.discrepancy_reject(discrepancy_id=missing.pk, actor=pharmacist)


def test_accepting_new_medication_creates_a_pending_prescription(linked_ada, pharmacist):
    services.ingest(channel="mllp", payload=a03())
    new = Discrepancy.objects.get(kind="new_in_ehr")
    services.discrepancy_accept(discrepancy_id=new.pk, actor=pharmacist)
    new.refresh_from_db()
    rx = new.created_prescription
    assert (rx.status, rx.drug.name, rx.patient_id, rx.prescriber_id) == (
        "pending", "metformin", linked_ada.pk, linked_ada.primary_prescriber_id)


def test_technician_cannot_accept(linked_ada, technician):
    services.ingest(channel="mllp", payload=a03())
    d = Discrepancy.objects.first()
    with pytest.raises(PermissionDenied):
        services.discrepancy_accept(discrepancy_id=d.pk, actor=technician)
    d.refresh_from_db()
    assert d.status == "proposed"


def test_summary_goes_to_the_prescriber_only_with_consent(linked_ada, pharmacist):
    services.ingest(channel="mllp", payload=a03())
    for d in Discrepancy.objects.all():
        services.discrepancy_accept(discrepancy_id=d.pk, actor=pharmacist)
    assert not OutboxMessage.objects.filter(kind="fhir:Communication").exists()

    EhrLink.objects.update(consent_to_exchange=True)
    services.ingest(
        channel="mllp", payload=a03(control_id="CTRL0002", meds=("WARFARIN 5MG DAILY", "ATORVASTATIN 40MG QHS"))
    )
    task = ReconciliationTask.objects.filter(status="open").get()
    for d in task.discrepancies.all():
        services.discrepancy_accept(discrepancy_id=d.pk, actor=pharmacist)
    message = OutboxMessage.objects.get(kind="fhir:Communication")
    assert '"resourceType": "Communication"' in message.payload and "atorvastatin" in message.payload.lower()


def test_oru_results_and_dg1_become_lab_and_diagnosis_rows(linked_ada):
    oru = hl7("MSH|^~\\&|LAB|GENHOSP|RXHUB|PHARM|20261130||ORU^R01^ORU_R01|LAB1|P|2.5.1",
              "PID|1||MRN12345^^^GENHOSP^MR||LOVELACE^ADA||19600105|F",
              "OBR|1|||34714-6^INR^LN",
              "OBX|1|NM|6301-6^INR in Platelet poor plasma^LN||2.4||2.0-3.0|N|||F|||20261129080000")
    assert services.ingest(channel="mllp", payload=oru).message.status == "processed"
    lab = LabResult.objects.get(patient=linked_ada)
    assert (lab.loinc_code, lab.value, lab.source) == ("6301-6", "2.4", "ehr")
    adt = a03(control_id="DX1", meds=()).replace(
        "PV1|1|I|4W^401^A", "PV1|1|I|4W^401^A\rDG1|1||I48.91^Atrial fibrillation^I10"
    )
    assert services.ingest(channel="mllp", payload=adt).message.status == "processed"
    assert Diagnosis.objects.get(patient=linked_ada).code == "I48.91"


def test_new_prescription_conflicting_with_an_allergy_is_flagged(ada, catalog_drugs):
    from tests.factories import PrescriptionFactory

    Allergy.objects.create(patient=ada, substance="Penicillin", drug_class="penicillin")
    cephalexin = catalog_drugs.filter(name="cephalexin").first()
    rx = PrescriptionFactory(patient=ada, drug=cephalexin)
    [flag] = rx.allergy_flags.all()
    assert "cross-sensitive" in flag.reason
    assert not ada.rx_lisinopril.allergy_flags.exists()


def test_fill_is_shared_as_medication_dispense_only_with_consent(linked_ada, pharmacist):
    from pharmacy.actors import system_actor
    from pharmacy.services import fill_record
    from tests.factories import FillFactory

    def record(actor):
        fill = FillFactory.build(prescription=linked_ada.rx_warfarin, pharmacy=linked_ada.rx_warfarin.pharmacy)
        return fill_record(fill=fill, actor=actor, reason="Filled")

    record(pharmacist)
    assert not OutboxMessage.objects.filter(kind="fhir:MedicationDispense").exists()  # no consent
    EhrLink.objects.update(consent_to_exchange=True)
    record(system_actor("system:inbound"))  # not a person's action: not shared
    FillFactory(prescription=linked_ada.rx_warfarin)  # the factories' system actor: not shared
    assert not OutboxMessage.objects.filter(kind="fhir:MedicationDispense").exists()
    fill = record(pharmacist)
    message = OutboxMessage.objects.get(kind="fhir:MedicationDispense")
    assert f'"id": "fill-{fill.pk}"' in message.payload and "855332" in message.payload


def test_pull_ehr_record_reads_three_searches_with_retries(linked_ada, pharmacist, http_receiver):
    import json

    EhrLink.objects.update(fhir_base_url=http_receiver.url + "/fhir", fhir_patient_id="p-1")
    med = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
           "subject": {"reference": "Patient/p-1"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                     "code": "860975", "display": "metformin 500 MG Oral Tablet"}]},
           "dosageInstruction": [{"text": "500 mg twice daily"}]}

    def answer(request):
        entries = [{"resource": med}] if request["path"].startswith("/fhir/MedicationRequest") else []
        return (
            200,
            json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}),
            "application/fhir+json",
        )

    http_receiver.responder = answer
    http_receiver.fail_next(1)  # first search answers 503 once: retried
    message = services.pull_ehr_record(patient_id=linked_ada.pk, actor=pharmacist)
    assert message.status == "processed" and message.channel == "pull"
    assert [r["path"].split("?")[0] for r in http_receiver.requests] == [
        "/fhir/MedicationRequest", "/fhir/MedicationRequest", "/fhir/AllergyIntolerance", "/fhir/Condition"]
    task = ReconciliationTask.objects.get()
    assert task.kind == "pull" and task.discrepancies.filter(kind="new_in_ehr").exists()


def test_batch_waiting_for_a_match_writes_nothing_until_resolved(linked_ada, technician):
    """An FHS/BHS batch: the first message matches, the second does not; nothing is opened until a
    person chooses the second patient, then each message goes to its own patient."""
    from tests.factories import PatientFactory

    other = PatientFactory(first_name="Grace", last_name="Hopper", birth_date=date(1956, 12, 9), sex="F")
    batch = ("FHS|^~\\&|EPIC|GENHOSP\rBHS|^~\\&|EPIC|GENHOSP\r" + a03(control_id="BATCH-1")
             + a03(control_id="BATCH-2", mrn="GH1", family="HOPPER", given="GRACE", birth="19561209", sex="F",
                   meds=("LISINOPRIL 10MG DAILY",)).replace("EPIC|GENHOSP", "EPIC|OTHERHOSP")
             + "BTS|2\rFTS|1\r")
    PatientFactory(first_name="Grace", last_name="Hopper", birth_date=date(1956, 12, 9), sex="F")  # ambiguous
    message = services.ingest(channel="folder", payload=batch).message
    assert message.status == "awaiting_match"
    assert ReconciliationTask.objects.count() == 0
    item = PatientMatchItem.objects.get()
    services.match_item_resolve(item_id=item.pk, patient_id=other.pk, actor=technician)
    message.refresh_from_db()
    assert message.status == "processed"
    assert sorted(ReconciliationTask.objects.values_list("patient_id", flat=True)) == sorted([linked_ada.pk, other.pk])
