"""Patient (or pet owner) messages about a refill: approved, denied (call the office), ready for pickup.

Called by refills/services/ inside the decision's (or the fill's) transaction: the message is an
outbox row committed with the decision, delivered after the commit. Each event is sent once (the outbox's
dedupe key ``patient-message:refill-<event>:<request id>``), only with the patient's consent and by
their contact preference (pharmacy/messaging/notify.py), and says no more than the first name and
the drug name (HIPAA minimum necessary: no surname, birth date, dose, prescriber or pharmacy).
For an animal the owner is addressed by first name, with the pet's first name.
A message that cannot be queued never undoes or blocks the decision.
"""
from __future__ import annotations

import logging

from django.db import transaction

from pharmacy.messaging.notify import patient_message_enqueue

from .choices import RefillStatus
from .models import RefillRequest

S = RefillStatus
log = logging.getLogger(__name__)

APPROVED = (S.APPROVED, S.APPROVED_WITH_CHANGES, S.AUTO_APPROVED)
SUBJECT = "A message from your pharmacy"  # no PHI in a subject line either


def _names(req: RefillRequest) -> tuple[str, str, str]:
    """(whom we greet, whose medicine, drug name) — first names and the generic drug name only."""
    patient = req.patient
    drug = req.prescription.drug.name
    if patient.is_animal:
        return patient.owner_first_name or "there", f"{patient.first_name}'s", drug
    return patient.first_name, "your", drug


def refill_message_text(req: RefillRequest, event: str) -> str:
    hello, whose, drug = _names(req)
    if event == "approved":
        return (f"Hi {hello}, {whose} refill of {drug} was approved. We will tell you when it is ready for pickup.")
    if event == "denied":
        return (f"Hi {hello}, {whose} refill of {drug} could not be approved. Please call the office.")
    if event == "ready":
        return f"Hi {hello}, {whose} {drug} is ready for pickup."
    raise ValueError(f"Unknown refill message event {event!r}")


def _send(req: RefillRequest, event: str):
    try:
        with transaction.atomic():  # a savepoint: a failure here cannot spoil the caller's transaction
            req = RefillRequest.objects.select_related("patient", "prescription__drug").get(pk=req.pk)
            return patient_message_enqueue(patient=req.patient, event_key=f"refill-{event}:{req.pk}",
                                           text=refill_message_text(req, event), subject=SUBJECT, related=req)
    except Exception:  # the decision stands; staff see the missing message in the outbox list
        log.exception("Patient message %s for refill request %s could not be queued", event, req.pk)
        return None


def notify_refill_decision(req: RefillRequest):
    """Approved or denied; other states say nothing. Returns the OutboxMessage or None."""
    if req.status in APPROVED:
        return _send(req, "approved")
    if req.status == S.DENIED:
        return _send(req, "denied")
    return None


def notify_ready_for_pickup(req: RefillRequest):
    if req.status != S.FILLED:
        return None
    return _send(req, "ready")
