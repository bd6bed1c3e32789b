"""Renewals the prescriber answers with a new prescription from their own system.

This system is not an EPCS-certified application (21 CFR 1311.100–1311.305): it never authorizes
a Schedule II–V prescription. For such a renewal the prescriber's link records "I will send a new
prescription from my EPCS-certified e-prescribing system" (``refill_request_await_new_prescription``):
the request waits in ``awaiting_new_prescription``, and a pharmacy that asked (RxRenewalRequest) is
answered with a **Denied** RxRenewalResponse whose DenialReason says a new prescription follows —
SCRIPT 2017071 no longer sends DeniedNewPrescriptionToFollow (docs/standards.md). Nothing that
authorizes dispensing is sent.

When the prescriber's NewRx arrives (``POST /api/v1/ncpdp/``, handled by the inbound NCPDP code),
that code creates the Prescription and calls ``refill_requests_close_for_new_prescription`` (or,
knowing the request, ``refill_request_replace_with_new_prescription``): the request becomes
``replaced_by_new_prescription`` and links the new prescription. Without one within
``RXHUB["NEW_PRESCRIPTION_WAIT_DAYS"]`` (default 3) days, ``refill_requests_new_prescription_overdue``
(a django-q2 schedule) returns it to the pharmacist queue and reminds the prescriber.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, actor_user, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.messaging.outbox import outbox_enqueue
from pharmacy.models import Prescription
from pharmacy.roles import ADMIN, PHARMACIST, PRESCRIBER, has_role, require_role

from .choices import RefillStatus, RequestKind
from .models import RefillRequest
from .services import refill_request_move as _move

S = RefillStatus
OVERDUE_ACTOR = system_actor("system:refill-followup")
# DenialReason text (≤ 70 characters, as the other denials): a new prescription follows.
NEW_RX_TO_FOLLOW = "New prescription to follow from the prescriber's EPCS-certified system"[:70]
# Requests a new prescription may close: waiting for it, or returned to the queue after waiting.
_CLOSABLE = (S.AWAITING_NEW_PRESCRIPTION, S.NEEDS_REVIEW, S.AWAITING_PRESCRIBER, S.EXPIRED)


def wait_days() -> int:
    """Days a request waits for the prescriber's new prescription before it returns to the queue."""
    return int(settings.RXHUB.get("NEW_PRESCRIPTION_WAIT_DAYS", 3))


def _locked(request_id: int) -> RefillRequest:
    try:
        return RefillRequest.objects.select_for_update().get(pk=request_id)
    except RefillRequest.DoesNotExist as exc:
        raise DomainError(f"Refill request {request_id} does not exist.", code="not_found") from exc


def _may_answer_as_prescriber(req: RefillRequest, actor: Actor) -> None:
    if isinstance(actor, SystemActor):
        if actor.name != "system:prescriber-link":
            raise DomainError("Only the prescriber can say a new prescription follows.",
                              code="prescriber_authorization_required")
        return
    prescriber = req.prescriber or req.prescription.prescriber
    if not has_role(actor, PRESCRIBER) or prescriber.user_id != actor.pk:
        raise DomainError("Only the request's prescriber can say a new prescription follows; forward the request "
                          "to them.", code="prescriber_authorization_required")


# --- the prescriber's choice ------------------------------------------------------------------------

def refill_request_await_new_prescription(*, request_id: int, actor: Actor, note: str = "") -> RefillRequest:
    """The prescriber will send a new prescription from their EPCS-certified e-prescribing system.

    awaiting_prescriber → awaiting_new_prescription. A pharmacy's RxRenewalRequest is answered with
    a Denied RxRenewalResponse (DenialReason: a new prescription follows); no NewRx, no approval,
    nothing that authorizes dispensing is queued."""
    from . import dispatch

    with transaction.atomic():
        req = _locked(request_id)
        _may_answer_as_prescriber(req, actor)
        if req.status != S.AWAITING_PRESCRIBER:
            raise TransitionNotAllowed(model="refill request", current=req.status, target=S.AWAITING_NEW_PRESCRIPTION)
        now = timezone.now()
        req.new_prescription_requested_at = now
        req.decided_by, req.decided_at = actor_user(actor), now
        req.note = note.strip() or req.note
        _move(req, S.AWAITING_NEW_PRESCRIPTION, actor=actor,
              reason=("The prescriber will send a new prescription from their EPCS-certified e-prescribing system"
                      + (f": {note.strip()}" if note.strip() else ""))[:500],
              fields=("new_prescription_requested_at", "decided_by", "decided_at", "note"))
        if req.pharmacy_message_id:  # the pharmacy asked: it gets an answer that authorizes nothing
            pharmacy = req.pharmacy or req.prescription.pharmacy
            kind, message_id, xml = dispatch.authorization_message(
                req, response="Denied", refills=0, reason_codes=[], denial_reason=NEW_RX_TO_FOLLOW)
            dispatch.enqueue_to_pharmacy(pharmacy=pharmacy, kind=kind, message_id=message_id, xml=xml, actor=actor,
                                         dedupe_key=f"refill:{req.pk}:decision", related=req,
                                         reason=f"Refill request {req.pk}: denied, a new prescription follows")
            req.outbound_message_id = message_id
            save_with_history(req, actor=actor, reason="Denial (new prescription to follow) queued for the pharmacy",
                              update_fields=["outbound_message_id"])
        record_event(kind="refill.awaiting_new_prescription", actor=actor, subject=req, patient_id=req.patient_id,
                     summary="Prescriber will send a new prescription from their EPCS-certified system",
                     data={"schedule": req.prescription.dea_schedule, "wait_days": wait_days()})
    return req


# --- the new prescription arrives ------------------------------------------------------------------

def refill_request_replace_with_new_prescription(*, prescription: Prescription, actor: Actor,
                                                 request_id: int | None = None,
                                                 request: RefillRequest | None = None) -> RefillRequest:
    """Close a request with the new prescription that replaces it (``replaced_by_new_prescription``,
    linked in ``new_prescription``). For the inbound NewRx handling (system actor) or staff.

    The prescription must be for the request's patient; a different drug is refused."""
    if (request_id is None) == (request is None):
        raise ValueError("Give request_id or request.")
    if not isinstance(actor, SystemActor):
        require_role(actor, PHARMACIST, ADMIN, action="link a new prescription to a refill request")
    with transaction.atomic():
        req = _locked(request_id if request_id is not None else request.pk)
        rx = Prescription.objects.select_related("drug").get(pk=prescription.pk)
        old = Prescription.objects.select_related("drug").get(pk=req.prescription_id)
        if rx.pk == old.pk:
            raise DomainError("The new prescription is the request's own prescription.", code="same_prescription")
        if rx.patient_id != req.patient_id:
            raise DomainError("The new prescription is for another patient.", code="other_patient")
        if not same_drug(old.drug, rx.drug):
            raise DomainError(f"The new prescription is for {rx.drug}, not {old.drug}.", code="other_drug")
        if req.status not in _CLOSABLE:
            raise TransitionNotAllowed(model="refill request", current=req.status,
                                       target=S.REPLACED_BY_NEW_PRESCRIPTION)
        req.new_prescription = rx
        label = f"{rx.rx_number or 'prescription ' + str(rx.pk)}"
        _move(req, S.REPLACED_BY_NEW_PRESCRIPTION, actor=actor,
              reason=f"Replaced by the prescriber's new prescription {label} (written {rx.written_date})",
              fields=("new_prescription",))
        record_event(kind="refill.replaced_by_new_prescription", actor=actor, subject=req,
                     patient_id=req.patient_id, summary=f"Replaced by new prescription {label}",
                     data={"new_prescription_id": rx.pk, "old_prescription_id": old.pk})
    return req


def same_drug(a, b) -> bool:
    """The same drug for closing a renewal: the same catalog row, NDC, RxCUI, or generic name
    (strength changes are the prescriber's to make in the new prescription)."""
    if a.pk == b.pk:
        return True
    if a.ndc and a.ndc == b.ndc:
        return True
    if a.rxcui and a.rxcui == b.rxcui:
        return True
    return bool(a.name) and a.name.strip().lower() == b.name.strip().lower()


def refill_requests_waiting_for(*, prescription: Prescription) -> list[RefillRequest]:
    """Open requests the new ``prescription`` answers: same patient and drug, waiting for a new
    prescription (or returned to the queue after waiting for one)."""
    candidates = (RefillRequest.objects.select_related("prescription__drug")
                  .filter(patient_id=prescription.patient_id, kind=RequestKind.RENEWAL)
                  .filter(Q(status=S.AWAITING_NEW_PRESCRIPTION)
                          | Q(status__in=_CLOSABLE, new_prescription_requested_at__isnull=False))
                  .exclude(prescription_id=prescription.pk).order_by("created_at", "pk"))
    return [r for r in candidates if same_drug(r.prescription.drug, prescription.drug)]


def refill_requests_close_for_new_prescription(*, prescription: Prescription,
                                               actor: Actor | None = None) -> list[RefillRequest]:
    """For the inbound NewRx: close every request waiting for this patient's and drug's new
    prescription. Returns the closed requests (none when nothing was waiting)."""
    actor = actor or system_actor("system:ncpdp-inbound")
    closed = []
    for req in refill_requests_waiting_for(prescription=prescription):
        try:
            closed.append(refill_request_replace_with_new_prescription(request_id=req.pk, prescription=prescription,
                                                                       actor=actor))
        except (DomainError, TransitionNotAllowed):  # changed meanwhile: leave it to the queue
            continue
    return closed


# --- no new prescription: back to the queue, with a reminder ---------------------------------------

@dataclass
class OverdueRun:
    returned: int = 0

    def __str__(self) -> str:
        return f"{self.returned} returned to the pharmacist queue (no new prescription after {wait_days()} days)"


def _reminder(req: RefillRequest, actor: Actor) -> None:
    """No PHI: the prescriber's own name and the request number only."""
    from .links import _channels

    prescriber = req.prescriber or req.prescription.prescriber
    for channel, destination in _channels(prescriber):
        if channel == "sms":
            subject, text = "", (f"Rx Workflow Hub: the new prescription you said you would send for request "
                                 f"{req.pk} has not arrived. Please send it from your EPCS system or call the "
                                 "pharmacy.")
        else:
            subject = "Reminder: a new prescription you said you would send has not arrived"
            text = (f"Dear {prescriber.first_name} {prescriber.last_name},\n\n"
                    f"On {timezone.localtime(req.new_prescription_requested_at):%Y-%m-%d} you answered renewal "
                    f"request {req.pk} with “I will send a new prescription from my EPCS-certified e-prescribing "
                    f"system”. It has not arrived after {wait_days()} days. Please send it, or call the pharmacy; "
                    f"the pharmacist has the request back in their queue.\n\n— Rx Workflow Hub\n")
        outbox_enqueue(kind=f"{channel}:new-prescription-reminder", payload=text, transport=channel,
                       destination=destination, subject=subject, content_type="text/plain", actor=actor,
                       dedupe_key=f"refill:{req.pk}:new-rx-reminder:{req.new_prescription_requested_at:%Y%m%d%H%M%S}"
                                  f":{channel}",
                       related=req, reason=f"Reminder: new prescription for refill request {req.pk} not received")


def _return_one(request_id: int, cutoff: datetime) -> bool:
    with transaction.atomic():
        req = (RefillRequest.objects.select_for_update(skip_locked=True)
               .filter(pk=request_id, status=S.AWAITING_NEW_PRESCRIPTION,
                       new_prescription_requested_at__lte=cutoff).first())
        if req is None:
            return False
        why = f"No new prescription arrived within {wait_days()} days"
        req.note = f"{why}; the prescriber was reminded. Back to the pharmacist."
        _move(req, S.NEEDS_REVIEW, actor=OVERDUE_ACTOR, reason=f"Returned to the pharmacist queue: {why.lower()}",
              fields=("note",))
        _reminder(req, OVERDUE_ACTOR)
        record_event(kind="refill.new_prescription_overdue", actor=OVERDUE_ACTOR, subject=req,
                     patient_id=req.patient_id, summary=f"{why}; returned to the queue, prescriber reminded")
    return True


def refill_requests_new_prescription_overdue(*, now: datetime | None = None) -> OverdueRun:
    """Return requests waiting longer than NEW_PRESCRIPTION_WAIT_DAYS to the queue (django-q2
    schedule ``rxhub:new-prescription-overdue``). Safe to run twice at once."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=wait_days())
    run = OverdueRun()
    due = RefillRequest.objects.filter(status=S.AWAITING_NEW_PRESCRIPTION, new_prescription_requested_at__lte=cutoff)
    for pk in due.order_by("new_prescription_requested_at").values_list("pk", flat=True):
        run.returned += _return_one(pk, cutoff)
    return run
