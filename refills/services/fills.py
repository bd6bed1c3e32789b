"""After the decision: the pharmacy received the authorization, reported a fill, the patient
picked it up; and a prescription moved to another pharmacy (CancelRx to the old one)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pharmacy.actors import Actor, save_with_history, system_actor
from pharmacy.models import Fill, Prescription
from pharmacy.services import fill_record

from .. import dispatch
from ..choices import OPEN_STATUSES, can_transition
from ..models import RefillRequest
from ._common import S, _locked, _move, _notify


def on_authorization_delivered(message) -> None:
    """Outbox hook: the pharmacy has the authorization → sent_to_pharmacy."""
    if message.related_model != "refills.refillrequest" or not message.kind.startswith(
            ("ncpdp:NewRx", "ncpdp:RxRenewalResponse")):
        return
    with transaction.atomic():
        req = _locked(int(message.related_id))
        if can_transition(req.status, S.SENT_TO_PHARMACY):
            req.sent_at = message.sent_at or timezone.now()
            _move(req, S.SENT_TO_PHARMACY, actor=system_actor("system:outbox"),
                  reason=f"Pharmacy received {message.kind.split(':')[1]} {message.message_id}", fields=("sent_at",))


FILL_OUTCOMES = {
    "Dispensed": (S.FILLED, "dispensed"),
    "PartiallyDispensed": (S.PARTIALLY_FILLED, "partially_dispensed"),
    "NotDispensed": (S.NOT_DISPENSED, None),
}


def refill_request_record_fill(*, request_id: int, actor: Actor, fill_status: str, fill_date: date | None = None,
                               quantity=None, days_supply: int | None = None, reference: str = "",
                               note: str = "") -> RefillRequest:
    """The pharmacy's RxFill (NCPDP FillStatus): filled / partially filled / not dispensed, with a
    Fill row written for what was dispensed."""
    if fill_status not in FILL_OUTCOMES:
        raise ValidationError({"fill_status": f"Unknown fill status {fill_status!r}."})
    target, fill_kind = FILL_OUTCOMES[fill_status]
    with transaction.atomic():
        req = _locked(request_id)
        rx = Prescription.objects.get(pk=req.prescription_id)
        req.filled_at, req.fill_note = timezone.now(), note
        _move(req, target, actor=actor, reason=f"Pharmacy reported {fill_status}{': ' + note if note else ''}"[:500],
              fields=("filled_at", "fill_note"))
        if fill_kind:
            fill = Fill(prescription=rx, fill_date=fill_date or timezone.localdate(),
                        quantity=Decimal(str(quantity)) if quantity else (req.approved_quantity or rx.quantity),
                        days_supply=days_supply or req.approved_days_supply or rx.days_supply,
                        pharmacy=req.pharmacy or rx.pharmacy, status=fill_kind, external_reference=reference[:64])
            fill.full_clean()
            fill_record(fill=fill, actor=actor, reason=f"Fill reported for refill request {req.pk}")
        if target == S.FILLED:
            _notify(req, "ready")  # through the outbox, in the fill's transaction
    return req


@transaction.atomic
def refill_request_mark_picked_up(*, request_id: int, actor: Actor) -> RefillRequest:
    req = _locked(request_id)
    _move(req, S.PICKED_UP, actor=actor, reason="Picked up")
    return req


# --- pharmacy change --------------------------------------------------------------------------

def prescription_change_pharmacy(*, prescription_id: int, pharmacy, actor: Actor) -> Prescription:
    """Move a prescription to another pharmacy: CancelRx to the old one (outbox), open requests
    follow the prescription, the next authorization goes to the new pharmacy."""
    with transaction.atomic():
        rx = Prescription.objects.select_for_update().select_related("drug", "patient", "prescriber").get(
            pk=prescription_id)
        old = rx.pharmacy
        if old is not None and old.pk == pharmacy.pk:
            return rx
        if old is not None:
            message_id, xml = dispatch.cancel_message(rx, old)
            dispatch.enqueue_to_pharmacy(pharmacy=old, kind="ncpdp:CancelRx", message_id=message_id, xml=xml,
                                         actor=actor, dedupe_key=f"rx:{rx.pk}:cancel:{old.pk}:{message_id}",
                                         related=rx, reason=f"Prescription moved away from {old.name}")
        rx.pharmacy = pharmacy
        save_with_history(rx, actor=actor, reason=f"Moved to {pharmacy.name}", update_fields=["pharmacy"])
        for req in RefillRequest.objects.select_for_update().filter(prescription=rx, status__in=OPEN_STATUSES):
            req.pharmacy = pharmacy
            save_with_history(req, actor=actor, reason=f"Pharmacy changed to {pharmacy.name}",
                              update_fields=["pharmacy"])
    return rx
