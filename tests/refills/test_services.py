"""Refill request services: every transition, decisions, dispatch through the outbox, protocol modes."""
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from audit.models import AuditEvent
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.interop import ncpdp
from pharmacy.models import Fill, OutboxMessage
from refills import services
from refills.choices import OPEN_STATUSES, TRANSITIONS, RefillStatus, can_transition
from refills.links import LINK_ACTOR
from tests.factories import DrugFactory, PharmacyFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
S = RefillStatus
ALL = list(S.values)


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in ALL for t in ALL])
def test_transition_table_is_the_only_way(current, target):
    expected = (target == S.CANCELLED and current in OPEN_STATUSES) or target in TRANSITIONS[current]
    assert can_transition(current, target) is expected


@pytest.mark.parametrize("status", [s for s in ALL if s not in (S.NEEDS_REVIEW, S.AWAITING_PRESCRIBER)])
def test_approve_refused_outside_review_states(make_request, pharmacist, status):
    req = make_request(status=status)
    with pytest.raises(TransitionNotAllowed):
        services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    req.refresh_from_db()
    assert req.status == status and not OutboxMessage.objects.exists()


@pytest.mark.parametrize("status", list(OPEN_STATUSES))
def test_cancel_allowed_from_every_open_state(make_request, pharmacist, status):
    req = make_request(status=status)
    services.refill_request_cancel(request_id=req.pk, actor=pharmacist, reason="Patient moved away")
    req.refresh_from_db()
    assert req.status == S.CANCELLED
    assert req.history.latest().history_change_reason == "Cancelled: Patient moved away"


@pytest.mark.parametrize("status", [S.DENIED, S.FILLED, S.PICKED_UP, S.SENT_TO_PHARMACY])
def test_cancel_refused_once_closed_or_sent(make_request, pharmacist, status):
    with pytest.raises(TransitionNotAllowed):
        services.refill_request_cancel(request_id=make_request(status=status).pk, actor=pharmacist)


def test_approve_refill_writes_newrx_and_uses_one_refill(make_request, pharmacist):
    req = make_request()
    services.refill_request_approve(request_id=req.pk, actor=pharmacist, note="OK per protocol")
    req.refresh_from_db()
    assert req.status == S.APPROVED and req.decided_by == pharmacist and req.decided_at
    assert req.prescription.refills_remaining == 2
    message = OutboxMessage.objects.get(related_id=str(req.pk), kind__startswith="ncpdp:")
    assert message.kind == "ncpdp:NewRx" and message.message_id == req.outbound_message_id
    parsed = ncpdp.parse_message(message.payload)
    assert parsed.transaction == "NewRx"
    assert parsed.header.to.qualifier == "P" and parsed.header.to.id == req.pharmacy.ncpdp_id
    assert parsed.medication_prescribed.refills == 2
    assert req.history.latest().history_user == pharmacist
    assert AuditEvent.objects.filter(kind="refill.approved", subject_id=str(req.pk)).exists()


def test_pharmacy_request_gets_rxrenewalresponse_relating_to_it(make_request, pharmacist):
    req = make_request(status=S.AWAITING_PRESCRIBER, kind="renewal", source="pharmacy",
                       pharmacy_message_id="PHARM123", pharmacy_requested_refills=3)
    # The prescriber answers (signed link); a pharmacist may not authorize a renewal (issue 13).
    services.refill_request_approve(request_id=req.pk, actor=LINK_ACTOR, refills=2, quantity="60", days_supply=60)
    req.refresh_from_db()
    assert req.status == S.APPROVED_WITH_CHANGES
    parsed = ncpdp.parse_message(OutboxMessage.objects.get(related_id=str(req.pk), kind__startswith="ncpdp:").payload)
    assert parsed.transaction == "RxRenewalResponse"
    assert parsed.header.relates_to_message_id == "PHARM123"
    assert parsed.response.kind == "ApprovedWithChanges" and parsed.medication_prescribed.refills == 2
    rx = req.prescription
    rx.refresh_from_db()
    assert (rx.refills_authorized, rx.refills_remaining, rx.days_supply, rx.quantity) == (2, 2, 60, Decimal("60"))


def test_deny_needs_a_reason_and_answers_the_pharmacy(make_request, pharmacist):
    req = make_request(source="pharmacy", pharmacy_message_id="PHARM9")
    with pytest.raises(ValidationError):
        services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason=" ")
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Needs an appointment", reason_code="AM")
    req.refresh_from_db()
    assert req.status == S.DENIED and req.denial_reason_code == "AM"
    parsed = ncpdp.parse_message(OutboxMessage.objects.get(related_id=str(req.pk), kind__startswith="ncpdp:").payload)
    assert parsed.response.kind == "Denied" and "AM" in parsed.response.reason_codes


def test_technician_can_never_record_a_clinical_decision(make_request, technician):
    req = make_request()
    with pytest.raises(PermissionDenied):
        services.refill_request_approve(request_id=req.pk, actor=technician)
    with pytest.raises(PermissionDenied):
        services.refill_request_deny(request_id=req.pk, actor=technician, reason="x")
    req.refresh_from_db()
    assert req.status == S.NEEDS_REVIEW


def test_claim_blocks_another_pharmacist(make_request, pharmacist, make_user):
    other = make_user("pharmacist")
    req = make_request()
    services.refill_request_claim(request_id=req.pk, actor=pharmacist)
    with pytest.raises(DomainError) as exc:
        services.refill_request_claim(request_id=req.pk, actor=other)
    assert exc.value.code == "already_claimed"
    with pytest.raises(DomainError):
        services.refill_request_approve(request_id=req.pk, actor=other)
    services.refill_request_unclaim(request_id=req.pk, actor=pharmacist)
    services.refill_request_approve(request_id=req.pk, actor=other)


def test_schedule_ii_renewal_is_never_authorized_here(make_request, pharmacist):
    # Issue 13: was "cannot get refills" (a ValidationError on refills=1, approval otherwise): a
    # Schedule II renewal is not authorized electronically by this system at all (21 CFR 1311).
    drug = DrugFactory(name="oxycodone", dea_schedule="2", therapeutic_class="opioid_analgesic")
    rx = PrescriptionFactory(drug=drug, refills_authorized=0, refills_remaining=0)
    req = make_request(prescription=rx, kind="renewal", status=S.AWAITING_PRESCRIBER)
    with pytest.raises(DomainError) as exc:
        services.refill_request_approve(request_id=req.pk, actor=pharmacist, refills=1)
    assert exc.value.code == "prescriber_authorization_required" and "EPCS" in str(exc.value)
    with pytest.raises(DomainError) as exc:
        services.refill_request_approve(request_id=req.pk, actor=LINK_ACTOR)
    assert exc.value.code == "epcs_required" and "1311" in str(exc.value)
    assert not OutboxMessage.objects.filter(related_id=str(req.pk)).exists()


def test_delivery_moves_to_sent_then_fill_to_filled(make_request, pharmacist, django_capture_on_commit_callbacks):
    req = make_request()
    with django_capture_on_commit_callbacks(execute=True):
        services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    req.refresh_from_db()
    assert req.status == S.SENT_TO_PHARMACY and req.sent_at
    services.refill_request_record_fill(request_id=req.pk, actor=pharmacist, fill_status="Dispensed", quantity="30",
                                        days_supply=30, reference="RXFILL1")
    req.refresh_from_db()
    assert req.status == S.FILLED
    assert Fill.objects.filter(prescription=req.prescription, external_reference="RXFILL1").count() == 1
    services.refill_request_mark_picked_up(request_id=req.pk, actor=pharmacist)


def test_second_open_request_refused(due_prescription, pharmacist):
    services.refill_request_open(prescription=due_prescription, actor=pharmacist, source="staff")
    with pytest.raises(DomainError) as exc:
        services.refill_request_open(prescription=due_prescription, actor=pharmacist, source="staff")
    assert exc.value.code == "duplicate_open_request"


@pytest.mark.parametrize(("mode", "expected"), [("shadow", S.NEEDS_REVIEW), ("assist", S.NEEDS_REVIEW),
                                                ("auto", S.AUTO_APPROVED), ("off", S.NEEDS_REVIEW)])
def test_protocol_modes(due_prescription, pharmacist, ace_rule, mode, expected):
    ace_rule(mode)
    req = services.refill_request_open(prescription=due_prescription, actor=pharmacist, source="staff")
    assert req.status == expected
    assert req.protocol_trace, "the rule trace is stored"
    if mode in ("shadow", "assist", "auto"):
        assert req.protocol_outcome == "approve" and req.protocol_suggestion == "approve", req.protocol_trace
    if mode == "auto":
        assert req.decided_by.username == "system:refill-protocol"
        assert OutboxMessage.objects.filter(related_id=str(req.pk)).exists()
    else:
        assert not OutboxMessage.objects.filter(related_id=str(req.pk)).exists()


def test_auto_mode_refers_when_a_lab_is_missing(due_prescription, pharmacist, ace_rule):
    ace_rule("auto")
    due_prescription.patient.lab_results.filter(loinc_code="2160-0").delete()
    req = services.refill_request_open(prescription=due_prescription, actor=pharmacist, source="staff")
    assert req.status == S.NEEDS_REVIEW and req.protocol_outcome == "refer"
    failed = [c["name"] for c in req.protocol_trace if not c["passed"]]
    assert any("Creatinine" in name for name in failed)


def test_pharmacy_change_sends_cancelrx_to_old_pharmacy(make_request, pharmacist):
    req = make_request()
    old = req.prescription.pharmacy
    new = PharmacyFactory()
    services.prescription_change_pharmacy(prescription_id=req.prescription_id, pharmacy=new, actor=pharmacist)
    cancel = OutboxMessage.objects.get(kind="ncpdp:CancelRx")
    assert ncpdp.parse_message(cancel.payload).header.to.id == old.ncpdp_id
    req.refresh_from_db()
    assert req.pharmacy == new
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    auth = OutboxMessage.objects.get(kind="ncpdp:NewRx")
    assert ncpdp.parse_message(auth.payload).header.to.id == new.ncpdp_id


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approvals_give_one_decision(make_request, make_user):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent row locks need PostgreSQL")
    req = make_request()
    users = [make_user("pharmacist"), make_user("pharmacist")]
    barrier, outcomes = threading.Barrier(2), []

    def approve(user):
        barrier.wait()
        try:
            services.refill_request_approve(request_id=req.pk, actor=user)
            outcomes.append("approved")
        except (TransitionNotAllowed, DomainError) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in users]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == ["TransitionNotAllowed", "approved"]
    assert OutboxMessage.objects.filter(related_id=str(req.pk), kind__startswith="ncpdp:").count() == 1
    req.refresh_from_db()
    assert req.prescription.refills_remaining == 2
