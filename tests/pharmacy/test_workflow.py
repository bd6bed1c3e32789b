"""pharmacy/workflow.py: the one lock / check-transition / move / record-why helper (issue 12)."""
import pytest
from django.db import transaction

from pharmacy import workflow
from pharmacy.errors import DomainError, TransitionNotAllowed
from refills.choices import can_transition
from refills.models import RefillRequest
from tests.factories import PrescriptionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("table", "current", "target", "allowed"), [
    ({"open": {"in_review", "completed"}}, "open", "in_review", True),
    ({"open": {"in_review"}}, "in_review", "open", False),
    ({"open": {"in_review"}}, "unknown", "open", False),
    (can_transition, "needs_review", "approved", True),
    (can_transition, "approved", "needs_review", False),
])
def test_allowed_reads_a_table_or_the_apps_function(table, current, target, allowed):
    assert workflow.allowed(table, current, target) is allowed


def test_move_checks_sets_and_records_who_and_why_or_refuses_with_409(pharmacist):
    rx = PrescriptionFactory()
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review",
                                       pharmacy=rx.pharmacy, prescriber=rx.prescriber)
    with transaction.atomic():
        locked = workflow.locked(RefillRequest, req.pk, label="refill request")
        workflow.move(locked, "approved", transitions=can_transition, label="refill request", actor=pharmacist,
                      reason="Approved: looks right")
    req.refresh_from_db()
    latest = req.history.latest()
    assert (req.status, latest.history_user, latest.history_change_reason) == (
        "approved", pharmacist, "Approved: looks right")
    with pytest.raises(TransitionNotAllowed) as refused:
        workflow.move(req, "needs_review", transitions=can_transition, label="refill request", actor=pharmacist,
                      reason="back")
    assert refused.value.code == "transition_not_allowed" and refused.value.status_code == 409
    assert str(refused.value) == "A refill request that is approved cannot become needs_review."
    req.refresh_from_db()
    assert req.status == "approved" and req.history.count() == 2


def test_locked_names_a_missing_row():
    with pytest.raises(DomainError) as missing, transaction.atomic():
        workflow.locked(RefillRequest, 987654, label="refill request")
    assert missing.value.code == "not_found" and str(missing.value) == "Refill request 987654 does not exist."
