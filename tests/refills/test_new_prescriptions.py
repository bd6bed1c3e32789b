"""Renewals answered with a new prescription from the prescriber's EPCS system (21 CFR 1311):
awaiting_new_prescription → replaced_by_new_prescription (the NewRx arrives) or back to the queue
after NEW_PRESCRIPTION_WAIT_DAYS with a reminder. Nothing that authorizes dispensing is sent."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.models import OutboxMessage
from refills import links, services
from refills.choices import TRANSITIONS, RefillStatus, can_transition
from refills.models import PrescriberLink, RefillRequest
from refills.new_prescriptions import (
    NEW_RX_TO_FOLLOW,
    refill_request_await_new_prescription,
    refill_request_replace_with_new_prescription,
    refill_requests_close_for_new_prescription,
    refill_requests_new_prescription_overdue,
)
from refills.tasks import SCHEDULES
from tests.factories import DrugFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
S = RefillStatus


@pytest.fixture
def controlled_renewal(make_request, pharmacist):
    """A Schedule II renewal the pharmacy asked for (RxRenewalRequest), forwarded to the prescriber."""
    def make(schedule="2", pharmacy_message_id="PHARM-REQ-1"):
        drug = DrugFactory(name=f"oxycodone-s{schedule}", dea_schedule=schedule, therapeutic_class="opioid_analgesic")
        rx = PrescriptionFactory(drug=drug, refills_authorized=0, refills_remaining=0)
        FillFactory(prescription=rx)
        req = make_request(prescription=rx, kind="renewal", pharmacy_message_id=pharmacy_message_id)
        services.refill_request_forward(request_id=req.pk, actor=pharmacist)
        link = PrescriberLink.objects.get(request=req)
        return RefillRequest.objects.get(pk=req.pk), links.link_token(link)
    return make


def _authorizing(request_id):
    """Outbox messages for the request that would let a pharmacy dispense."""
    out = []
    for m in OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(request_id)):
        if m.kind == "ncpdp:NewRx" or ("<Approved" in m.payload or "<ApprovedWithChanges" in m.payload
                                       or "<Replace" in m.payload):
            out.append(m)
    return out


def test_transition_table_has_the_new_states():
    assert can_transition(S.AWAITING_PRESCRIBER, S.AWAITING_NEW_PRESCRIPTION)
    assert TRANSITIONS[S.AWAITING_NEW_PRESCRIPTION] == {S.REPLACED_BY_NEW_PRESCRIPTION, S.NEEDS_REVIEW}
    assert TRANSITIONS[S.REPLACED_BY_NEW_PRESCRIPTION] == set()
    assert not can_transition(S.AWAITING_NEW_PRESCRIPTION, S.APPROVED)
    assert not can_transition(S.NEEDS_REVIEW, S.AWAITING_NEW_PRESCRIPTION)  # only the prescriber says so
    assert can_transition(S.AWAITING_NEW_PRESCRIPTION, S.CANCELLED)


def test_link_new_prescription_answers_pharmacy_with_denied_and_authorizes_nothing(controlled_renewal):
    req, token = controlled_renewal()
    rx_before = req.prescription
    answered = links.prescriber_link_answer(token=token, decision="new_prescription", ip="127.0.0.1")
    assert answered.status == S.AWAITING_NEW_PRESCRIPTION
    assert answered.new_prescription_requested_at is not None
    messages = list(OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(req.pk)))
    assert [m.kind for m in messages] == ["ncpdp:RxRenewalResponse"]
    xml = messages[0].payload
    assert "<Denied>" in xml and NEW_RX_TO_FOLLOW in xml and "PHARM-REQ-1" in xml
    assert "DeniedNewPrescriptionToFollow" not in xml
    assert _authorizing(req.pk) == []
    rx_before.refresh_from_db()
    assert rx_before.refills_remaining == 0 and rx_before.written_date == req.prescription.written_date
    assert RefillRequest.history.filter(id=req.pk, status=S.AWAITING_NEW_PRESCRIPTION,
                                        history_change_reason__contains="EPCS-certified").exists()
    assert AuditEvent.objects.filter(kind="refill.awaiting_new_prescription", subject_id=str(req.pk)).exists()


def test_practice_initiated_renewal_gets_no_message_at_all(controlled_renewal):
    req, token = controlled_renewal(pharmacy_message_id="")
    links.prescriber_link_answer(token=token, decision="new_prescription")
    assert not OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(req.pk)).exists()


def test_only_the_prescriber_says_a_new_prescription_follows(controlled_renewal, pharmacist, make_user):
    req, _ = controlled_renewal()
    with pytest.raises(DomainError) as exc:
        refill_request_await_new_prescription(request_id=req.pk, actor=pharmacist)
    assert exc.value.code == "prescriber_authorization_required"
    other = make_user("prescriber")
    with pytest.raises(DomainError):
        refill_request_await_new_prescription(request_id=req.pk, actor=other)
    own = make_user("prescriber")
    req.prescriber.user = own
    req.prescriber.save(update_fields=["user"])
    assert refill_request_await_new_prescription(request_id=req.pk, actor=own).status == S.AWAITING_NEW_PRESCRIPTION


def test_new_prescription_for_same_patient_and_drug_closes_the_request(controlled_renewal):
    req, token = controlled_renewal()
    links.prescriber_link_answer(token=token, decision="new_prescription")
    old = req.prescription
    new_rx = PrescriptionFactory(patient=old.patient, prescriber=old.prescriber, drug=old.drug, refills_authorized=0,
                                 refills_remaining=0, written_date=timezone.localdate(), rx_number="NEW-1")
    closed = refill_requests_close_for_new_prescription(prescription=new_rx)
    assert [r.pk for r in closed] == [req.pk]
    req.refresh_from_db()
    assert req.status == S.REPLACED_BY_NEW_PRESCRIPTION and req.new_prescription_id == new_rx.pk
    assert not req.is_open
    assert AuditEvent.objects.filter(kind="refill.replaced_by_new_prescription", subject_id=str(req.pk)).exists()
    assert _authorizing(req.pk) == []
    # A second identical NewRx finds nothing left to close.
    assert refill_requests_close_for_new_prescription(prescription=new_rx) == []


def test_new_prescription_for_another_drug_or_patient_closes_nothing(controlled_renewal):
    req, token = controlled_renewal()
    links.prescriber_link_answer(token=token, decision="new_prescription")
    old = req.prescription
    other_drug = PrescriptionFactory(patient=old.patient, prescriber=old.prescriber)
    other_patient = PrescriptionFactory(drug=old.drug, prescriber=old.prescriber, refills_authorized=0,
                                        refills_remaining=0)
    assert refill_requests_close_for_new_prescription(prescription=other_drug) == []
    assert refill_requests_close_for_new_prescription(prescription=other_patient) == []
    with pytest.raises(DomainError) as exc:
        refill_request_replace_with_new_prescription(request=req, prescription=other_drug,
                                                     actor=links.LINK_ACTOR)
    assert exc.value.code == "other_drug"
    req.refresh_from_db()
    assert req.status == S.AWAITING_NEW_PRESCRIPTION


def test_replace_refuses_a_closed_request(controlled_renewal, pharmacist):
    req, token = controlled_renewal()
    links.prescriber_link_answer(token=token, decision="deny", reason="Not appropriate")
    new_rx = PrescriptionFactory(patient=req.patient, drug=req.prescription.drug,
                                 prescriber=req.prescription.prescriber, refills_authorized=0, refills_remaining=0)
    with pytest.raises(TransitionNotAllowed):
        refill_request_replace_with_new_prescription(request_id=req.pk, prescription=new_rx, actor=pharmacist)


@pytest.mark.parametrize("days", [3, 5])
def test_overdue_returns_to_queue_with_reminder_after_configured_days(controlled_renewal, settings, days):
    if days != 3:
        settings.RXHUB = {**settings.RXHUB, "NEW_PRESCRIPTION_WAIT_DAYS": days}
    req, token = controlled_renewal()
    links.prescriber_link_answer(token=token, decision="new_prescription")
    now = timezone.now()
    assert refill_requests_new_prescription_overdue(now=now + timedelta(days=days) - timedelta(minutes=5)).returned == 0
    req.refresh_from_db()
    assert req.status == S.AWAITING_NEW_PRESCRIPTION
    run = refill_requests_new_prescription_overdue(now=now + timedelta(days=days, minutes=1))
    assert run.returned == 1
    req.refresh_from_db()
    assert req.status == S.NEEDS_REVIEW and str(days) in req.note
    reminders = OutboxMessage.objects.filter(kind__endswith=":new-prescription-reminder", related_id=str(req.pk))
    assert reminders.count() == 1
    reminder = reminders.get()
    assert reminder.destination == req.prescriber.email
    assert req.patient.last_name not in reminder.payload and req.prescription.drug.name not in reminder.payload
    # Run again: nothing more (no second reminder).
    assert refill_requests_new_prescription_overdue(now=now + timedelta(days=days + 1)).returned == 0
    # Back in the queue it can still be closed by the late NewRx.
    new_rx = PrescriptionFactory(patient=req.patient, drug=req.prescription.drug,
                                 prescriber=req.prescription.prescriber, refills_authorized=0, refills_remaining=0)
    assert [r.pk for r in refill_requests_close_for_new_prescription(prescription=new_rx)] == [req.pk]


def test_overdue_schedule_is_declared():
    spec = next(s for s in SCHEDULES if s["name"] == "rxhub:new-prescription-overdue")
    assert spec["func"] == "refills.tasks.return_overdue_new_prescriptions"
