"""Inbound NewRx from a prescriber's system at POST /api/v1/ncpdp/: a new prescription for a matched
patient, a patient-match item for a person otherwise, Error with the reason when the message names
what we do not have, and the renewal waiting for a new prescription (EPCS) closed."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from pharmacy import ncpdp_parties as parties
from pharmacy.errors import TransitionNotAllowed
from pharmacy.interop import ncpdp
from pharmacy.models import Pharmacy, Prescription
from refills import links, services
from refills.choices import RefillStatus
from refills.models import InboundNcpdpMessage, NewRxPatientMatch, PrescriberLink, RefillRequest
from refills.new_rx import new_rx_match_resolve
from tests.factories import DrugFactory, FillFactory, PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/ncpdp/"
S = RefillStatus


@pytest.fixture
def api(api_client_for):
    return api_client_for("integrator")


def post(api, xml: str):
    for pharmacy in Pharmacy.objects.exclude(integrator_users=api.user):
        pharmacy.integrator_users.add(api.user)
    return api.post(URL, data=xml, content_type="application/xml")


def answer_of(response) -> ncpdp.ScriptMessage:
    return ncpdp.parse_message(response.content)


def new_rx(rx, *, message_id="EHR-NEWRX-1", patient=None, medication=None, prescriber=None) -> str:
    """The prescriber's EHR sends a NewRx for ``rx``'s patient and drug to its pharmacy."""
    header = ncpdp.Header(to=ncpdp.Party("P", rx.pharmacy.ncpdp_id), from_=ncpdp.Party("D", rx.prescriber.npi),
                          message_id=message_id, prescriber_order_number="EHR-ORDER-77")
    med = medication or replace(parties.medication_info(rx, refills=2), written_date=timezone.localdate(),
                                quantity=Decimal("60"), days_supply=30)
    return ncpdp.build_new_rx(header=header, patient=patient or parties.patient_info(rx.patient),
                              pharmacy=parties.pharmacy_info(rx.pharmacy),
                              prescriber=prescriber or parties.prescriber_info(rx.prescriber), medication=med)


@pytest.fixture
def rx(db):
    rx = PrescriptionFactory(rx_number="RX-9001", refills_authorized=0, refills_remaining=0,
                             written_date=timezone.localdate() - timedelta(days=100))
    FillFactory(prescription=rx)
    return rx


def test_new_rx_for_a_matched_patient_creates_the_prescription_and_answers_010(api, rx):
    xml = new_rx(rx)
    response = post(api, xml)
    assert response.status_code == 200
    answer = answer_of(response)
    assert answer.transaction == "Status" and answer.status_code == "010"
    assert answer.relates_to_message_id == "EHR-NEWRX-1"
    new = Prescription.objects.exclude(pk=rx.pk).get()
    assert (new.patient, new.drug, new.prescriber, new.pharmacy) == (rx.patient, rx.drug, rx.prescriber, rx.pharmacy)
    assert (new.quantity, new.days_supply, new.refills_authorized, new.refills_remaining) == (Decimal("60"), 30, 2, 2)
    assert new.written_date == timezone.localdate() and new.sig == rx.sig
    assert Prescription.history.filter(id=new.pk, history_change_reason__contains="EHR-NEWRX-1").exists()
    assert AuditEvent.objects.filter(kind="ncpdp.new_rx_received", subject_id=str(new.pk)).exists()
    row = InboundNcpdpMessage.objects.get(message_id="EHR-NEWRX-1")
    assert row.status == "processed" and row.transaction == "NewRx" and f"Prescription {new.pk}" in row.result
    # a resend of the same bytes is a duplicate: answered as then, no second prescription
    again = post(api, xml)
    assert answer_of(again).status_code == "010" and Prescription.objects.count() == 2
    assert InboundNcpdpMessage.objects.filter(message_id="EHR-NEWRX-1", status="duplicate").count() == 1


def test_patient_name_with_accents_on_file_matches_the_ascii_message(api, rx):
    rx.patient.first_name = "Zoë"
    rx.patient.save(update_fields=["first_name"])
    assert "<FirstName>Zoe</FirstName>" in new_rx(rx)
    assert answer_of(post(api, new_rx(rx))).status_code == "010"
    assert Prescription.objects.exclude(pk=rx.pk).get().patient == rx.patient


def test_unmatched_patient_opens_a_match_item_and_a_person_resolves_it(api, rx, pharmacist):
    stranger = replace(parties.patient_info(rx.patient), first_name="Maria", last_name="Unknown")
    answer = answer_of(post(api, new_rx(rx, patient=stranger)))
    assert answer.status_code == "010" and "matched by staff" in answer.status_description
    item = NewRxPatientMatch.objects.get()
    assert item.status == "open" and item.patient_data["last_name"] == "Unknown" and item.candidates == []
    assert Prescription.objects.count() == 1  # nothing created yet
    resolved = new_rx_match_resolve(item_id=item.pk, patient_id=rx.patient.pk, actor=pharmacist)
    assert resolved.status == "resolved" and resolved.prescription.patient == rx.patient
    assert resolved.resolved_by == pharmacist and resolved.prescription.drug == rx.drug
    with pytest.raises(TransitionNotAllowed):
        new_rx_match_resolve(item_id=item.pk, patient_id=rx.patient.pk, actor=pharmacist)


def test_two_patients_with_the_same_name_and_birth_date_go_to_a_person(api, rx):
    PatientFactory(first_name=rx.patient.first_name, last_name=rx.patient.last_name, birth_date=rx.patient.birth_date)
    assert answer_of(post(api, new_rx(rx))).status_code == "010"
    item = NewRxPatientMatch.objects.get()
    assert len(item.candidates) == 2 and Prescription.objects.count() == 1


@pytest.mark.parametrize(("change", "element"), [
    ("prescriber", "Body/NewRx/Prescriber/NonVeterinarian/Identification/NPI"),
    ("drug", "Body/NewRx/MedicationPrescribed/DrugCoded/ProductCode/Code"),
    ("days", "Body/NewRx/MedicationPrescribed/DaysSupply"),
])
def test_what_we_cannot_use_is_answered_with_an_error_naming_it(api, rx, change, element):
    kwargs = {}
    if change == "prescriber":
        kwargs["prescriber"] = replace(parties.prescriber_info(rx.prescriber), npi="1234567893")
    elif change == "drug":
        kwargs["medication"] = replace(parties.medication_info(rx), ndc="99999999999", description="Unobtainium 5 mg")
    else:
        kwargs["medication"] = replace(parties.medication_info(rx), days_supply=None)
    response = post(api, new_rx(rx, **kwargs))
    error = answer_of(response)
    assert response.status_code == 400 and error.error_code == "900" and element in error.error_description
    assert Prescription.objects.count() == 1 and not NewRxPatientMatch.objects.exists()


def test_new_rx_closes_the_renewal_waiting_for_a_new_prescription(api, make_request, pharmacist):
    drug = DrugFactory(name="oxycodone", dea_schedule="2", therapeutic_class="opioid_analgesic")
    old = PrescriptionFactory(drug=drug, refills_authorized=0, refills_remaining=0)
    FillFactory(prescription=old)
    req = make_request(prescription=old, kind="renewal", pharmacy_message_id="PHARM-REQ-9")
    services.refill_request_forward(request_id=req.pk, actor=pharmacist)
    token = links.link_token(PrescriberLink.objects.get(request=req))
    links.prescriber_link_answer(token=token, decision="new_prescription", ip="127.0.0.1")
    assert RefillRequest.objects.get(pk=req.pk).status == S.AWAITING_NEW_PRESCRIPTION
    med = replace(parties.medication_info(old, refills=0), written_date=timezone.localdate())
    answer = answer_of(post(api, new_rx(old, medication=med, message_id="EPCS-NEWRX-1")))
    assert answer.status_code == "010" and f"closed request {req.pk}" in answer.status_description
    req.refresh_from_db()
    new = Prescription.objects.exclude(pk=old.pk).get()
    assert req.status == S.REPLACED_BY_NEW_PRESCRIPTION and req.new_prescription == new
    assert InboundNcpdpMessage.objects.get(message_id="EPCS-NEWRX-1").refill_request == req


def test_another_script_version_is_refused_saying_which(api, rx):
    xml = new_rx(rx).replace('TransactionVersion="2017071"', 'TransactionVersion="2023011"')
    response = post(api, xml)
    error = answer_of(response)
    assert response.status_code == 400 and error.error_code == "601"
    assert "SCRIPT 2023011" in error.error_description and "supports SCRIPT 2017071" in error.error_description
    assert Prescription.objects.count() == 1


@pytest.mark.parametrize(("field", "value", "element"), [
    ("address_line1", "", "Body/NewRx/Patient/HumanPatient/Address/AddressLine1"),
    ("phone", "555-0100", "Body/NewRx/Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone/Number"),
    ("last_name", "王", "Body/NewRx/Patient/HumanPatient/Name/LastName"),
])
def test_approval_whose_message_the_schema_cannot_carry_is_refused_naming_the_field(make_request, pharmacist, field,
                                                                                    value, element):
    """The service path: nothing changes, nothing is queued, the error names the message field."""
    from pharmacy.errors import DomainError
    from pharmacy.models import OutboxMessage

    req = make_request()
    setattr(req.patient, field, value)
    req.patient.save(update_fields=[field])
    with pytest.raises(DomainError) as exc:
        services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    assert exc.value.code == "ncpdp_value_refused" and element in str(exc.value)
    assert RefillRequest.objects.get(pk=req.pk).status == "needs_review"
    assert not OutboxMessage.objects.filter(kind__startswith="ncpdp:").exists()
