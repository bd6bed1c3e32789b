"""Deciding a refill request: approve (with changes), deny, forward to the prescriber, cancel;
the authorization applied to the prescription and queued for the pharmacy in the same transaction."""
from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, actor_user, save_with_history
from pharmacy.errors import DomainError
from pharmacy.interop.ncpdp import DENIAL_REASON_CODES
from pharmacy.models import Prescription, default_expiration
from pharmacy.roles import ADMIN, PHARMACIST, require_role
from pharmacy.rules.authority import format_quantity

from .. import authority, dispatch, facts
from ..choices import RequestKind
from ..eligibility import ALLERGY_CONFLICT, OVERRIDABLE_CODES
from ..models import RefillRequest
from ._common import S, _check_not_claimed_by_other, _locked, _may_decide, _move, _notify


def _eligibility_gate(req: RefillRequest, rx: Prescription, actor: Actor, *, kind: str, today: date,
                      override_reason: str) -> list[str]:
    """Blocking findings stop every approval (API 409 ``not_eligible`` with the finding codes). An
    allergy conflict or a refill too soon may be overridden by a pharmacist — a person, with a
    reason; an allergy conflict also by the request's own prescriber (through the signed link or
    logged in), with a reason — never by a protocol. Returns the codes overridden."""
    result = facts.current_eligibility(rx, kind=kind, today=today)
    blocking = result.blocking_reasons
    if not blocking:
        return []
    decider = authority.decider_for(actor, req, rx)
    overridable = all(r.code in OVERRIDABLE_CODES for r in blocking)
    prescriber_may = decider.kind == "prescriber" and decider.is_request_prescriber \
        and all(r.code == ALLERGY_CONFLICT for r in blocking)
    if override_reason.strip() and ((overridable and decider.kind == "pharmacist") or prescriber_may):
        return [r.code for r in blocking]
    hint = ""
    if prescriber_may:
        hint = " The prescriber may approve over the allergy conflict with a reason."
    elif overridable:
        hint = (" A pharmacist may override this with a reason." if decider.kind == "pharmacist"
                else " Only a pharmacist may override this, with a reason.")
    raise DomainError(
        "Not eligible: " + " ".join(f"{r.message} ({r.citation})" for r in blocking) + hint,
        code="not_eligible",
        errors={"eligibility": [{"code": r.code, "message": r.message} for r in blocking]})


def _changes(rx: Prescription, change, values: tuple) -> dict:
    quantity, days, refills = values
    out = {}
    if change.quantity is not None and quantity != rx.quantity:
        out["quantity"] = {"from": format_quantity(rx.quantity), "to": format_quantity(quantity)}
    if change.days_supply is not None and days != rx.days_supply:
        out["days_supply"] = {"from": rx.days_supply, "to": days}
    if change.refills is not None and refills != rx.refills_authorized:
        out["refills"] = {"from": rx.refills_authorized, "to": refills}
    return out


def describe_changes(changes: dict) -> str:
    names = {"quantity": "quantity", "days_supply": "days supply", "refills": "refills"}
    return "; ".join(f"{names.get(k, k)} {v['from']} → {v['to']}" for k, v in changes.items())


def refill_request_approve(*, request_id: int, actor: Actor, note: str = "", quantity=None, days_supply=None,
                           refills: int | None = None, override_reason: str = "") -> RefillRequest:
    """Approve (or approve with changes); the authorization goes to the pharmacy through the
    outbox in the same transaction and the prescription's refills change with it.

    Every path (queue, bulk, API, link) comes here, and here the rules hold: who may authorize
    (pharmacy/rules/authority.py — a renewal only by the prescriber or under a collaborative
    practice agreement, never Schedule II–V), the blocking eligibility findings, and the limits on
    what is authorized (refills per schedule, maximum authorization, expiry)."""
    today = timezone.localdate()
    with transaction.atomic():
        req = _locked(request_id)
        _may_decide(req, actor, "approve")
        _check_not_claimed_by_other(req, actor)
        rx = Prescription.objects.select_for_update(of=("self",)).select_related(
            "drug", "patient", "prescriber").get(pk=req.prescription_id)
        change = authority.change_of(quantity, days_supply, refills)
        granted = authority.authority_check(req, rx, actor, change, today=today)
        overridden = _eligibility_gate(req, rx, actor, kind=granted.kind, today=today,
                                       override_reason=override_reason)
        values = authority.authorization_values(req, rx, change)
        authority.limits_check(req, rx, change, today=today, renewal=granted.kind == "renewal")
        changes = _changes(rx, change, values)
        target = S.APPROVED_WITH_CHANGES if changes else S.APPROVED
        req.kind = granted.kind
        req.approved_quantity = values[0] if "quantity" in changes else None
        req.approved_days_supply = values[1] if "days_supply" in changes else None
        req.approved_refills = values[2] if "refills" in changes else None
        req.decided_by = actor_user(actor)
        req.decided_at, req.note = timezone.now(), note
        req.changes = changes
        req.agreement_id = granted.agreement.id if granted.agreement else None
        req.override_reason = override_reason.strip() if overridden else ""
        req.overridden_findings = overridden
        why = [S(target).label]
        if changes:
            why.append(f"changed: {describe_changes(changes)}")
        if granted.agreement:
            why.append(f"by {_person(actor)} under {granted.agreement.describe()}")
        if overridden:
            why.append(f"overrode {', '.join(overridden)}: {override_reason.strip()}")
        if note:
            why.append(note)
        _move(req, target, actor=actor, reason="; ".join(why)[:500],
              fields=("approved_quantity", "approved_days_supply", "approved_refills", "decided_by", "decided_at",
                      "note", "kind", "changes", "agreement", "override_reason", "overridden_findings"))
        _authorize(
            req, actor=actor, response="ApprovedWithChanges" if target == S.APPROVED_WITH_CHANGES else "Approved",
            refills=values[2] if granted.kind == "renewal" else None,
            message_note=_message_note(req, actor, granted, changes),
        )
        record_event(kind=f"refill.{target}", actor=actor, subject=req, patient_id=req.patient_id,
                     summary=f"{req.get_kind_display()} {S(target).label.lower()}",
                     data={"quantity": str(quantity) if quantity is not None else None, "days_supply": days_supply,
                           "refills": refills, "schedule": rx.dea_schedule, "changes": changes,
                           "agreement_id": req.agreement_id, "overridden": overridden})
        _notify(req, "decision")  # through the outbox, in the decision's transaction
    return req


def _person(actor: Actor) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    return f"pharmacist {actor.get_full_name() or actor.username}"


def _message_note(req: RefillRequest, actor: Actor, granted, changes: dict) -> str:
    """What the pharmacy reads in the message (NCPDP Note, short: an RxRenewalResponse Note holds
    70 characters): the pharmacist and the agreement they act under first, then what changed."""
    parts = []
    if granted.agreement:
        who = "Protocol" if isinstance(actor, SystemActor) else f"RPh {actor.get_full_name() or actor.username}"
        parts.append(f"{who} under CPA #{granted.agreement.id} (collaborative practice agreement)")
    if changes:
        short = {"quantity": "qty", "days_supply": "days", "refills": "refills"}
        parts.append("changed " + ", ".join(f"{short.get(k, k)} {v['from']}->{v['to']}" for k, v in changes.items()))
    return "; ".join(parts)


def _authorize(req: RefillRequest, *, actor: Actor, response: str, refills: int | None = None,
               message_note: str = "") -> None:
    """Apply the approval to the prescription and queue the NCPDP message (same transaction).
    Callers have checked who may authorize and the limits (refill_request_approve, evaluate)."""
    rx = Prescription.objects.select_for_update(of=("self",)).select_related("drug", "patient", "prescriber").get(
        pk=req.prescription_id)
    if req.kind == RequestKind.RENEWAL:
        if rx.dea_schedule in authority.rules.CONTROLLED:  # never, whoever calls (21 CFR 1311)
            raise DomainError("A Schedule II–V prescription is never authorized by this system (21 CFR 1311).",
                              code="prescriber_authorization_required")
        # A renewal is a new authorization: new written date, refills as approved (or as before).
        if refills is None:
            refills = authority.authorization_values(req, rx, authority.change_of())[2]
        today = timezone.localdate()
        rx.written_date, rx.refills_authorized, rx.refills_remaining = today, refills, refills
        rx.expiration_date = default_expiration(today, rx.dea_schedule)
        rx.status = "active"
        if req.approved_quantity:
            rx.quantity = req.approved_quantity
        if req.approved_days_supply:
            rx.days_supply = req.approved_days_supply
        save_with_history(rx, actor=actor, reason=f"Renewed by refill request {req.pk}", update_fields=[
            "written_date", "refills_authorized", "refills_remaining", "expiration_date", "status", "quantity",
            "days_supply"])
        message_refills = refills
    else:
        if rx.refills_remaining <= 0:
            raise DomainError(
                "No refills remain on this prescription; it needs a renewal.", code="no_refills_remaining"
            )
        rx.refills_remaining -= 1
        save_with_history(rx, actor=actor, reason=f"Refill authorized by refill request {req.pk}",
                          update_fields=["refills_remaining"])
        message_refills = rx.refills_remaining
    req.prescription = rx
    pharmacy = req.pharmacy or rx.pharmacy
    if pharmacy is None:
        raise DomainError("No dispensing pharmacy on this prescription.", code="no_pharmacy")
    kind, message_id, xml = dispatch.authorization_message(req, response=response, refills=message_refills,
                                                           note=message_note)
    dispatch.enqueue_to_pharmacy(pharmacy=pharmacy, kind=kind, message_id=message_id, xml=xml, actor=actor,
                                 dedupe_key=f"refill:{req.pk}:decision", related=req,
                                 reason=f"Authorization for refill request {req.pk}")
    req.outbound_message_id = message_id
    save_with_history(req, actor=actor, reason="Authorization queued for the pharmacy",
                      update_fields=["outbound_message_id"])


def refill_request_deny(*, request_id: int, actor: Actor, reason: str, reason_code: str = "AF") -> RefillRequest:
    if not (reason or "").strip():
        raise ValidationError({"reason": "A reason is required to deny a request."})
    if reason_code and reason_code not in DENIAL_REASON_CODES:
        raise ValidationError({"reason_code": f"{reason_code!r} is not an NCPDP denial reason code."})
    with transaction.atomic():
        req = _locked(request_id)
        _may_decide(req, actor, "deny")
        _check_not_claimed_by_other(req, actor)
        req.decided_by, req.decided_at = actor_user(actor), timezone.now()
        req.denial_reason, req.denial_reason_code = reason.strip(), reason_code
        _move(req, S.DENIED, actor=actor, reason=f"Denied: {reason.strip()}"[:500],
              fields=("decided_by", "decided_at", "denial_reason", "denial_reason_code"))
        if req.pharmacy_message_id:  # the pharmacy asked: it gets an answer
            pharmacy = req.pharmacy or req.prescription.pharmacy
            kind, message_id, xml = dispatch.authorization_message(
                req, response="Denied", refills=0, reason_codes=[reason_code] if reason_code else [],
                denial_reason=reason.strip()[:70])
            dispatch.enqueue_to_pharmacy(pharmacy=pharmacy, kind=kind, message_id=message_id, xml=xml, actor=actor,
                                         dedupe_key=f"refill:{req.pk}:decision", related=req,
                                         reason=f"Denial for refill request {req.pk}")
            req.outbound_message_id = message_id
            save_with_history(req, actor=actor, reason="Denial queued for the pharmacy",
                              update_fields=["outbound_message_id"])
        record_event(kind="refill.denied", actor=actor, subject=req, patient_id=req.patient_id,
                     summary=f"Denied ({reason_code})", data={"reason_code": reason_code})
        _notify(req, "decision")  # through the outbox, in the decision's transaction
    return req


_prescriber_senders: list = []


def register_prescriber_sender(sender) -> None:
    """``sender(request=, actor=)`` asks the prescriber, in the forwarding transaction (the signed
    link, refills/links.py). Registered in RefillsConfig.ready so this module does not import links."""
    if sender not in _prescriber_senders:
        _prescriber_senders.append(sender)


def refill_request_forward(*, request_id: int, actor: Actor, note: str = "") -> RefillRequest:
    """Send to the prescriber (signed link by e-mail/SMS when refills.links is installed)."""
    with transaction.atomic():
        req = _locked(request_id)
        if not isinstance(actor, SystemActor):
            require_role(actor, PHARMACIST, ADMIN, action="forward a request to the prescriber")
        req.forwarded_at = timezone.now()
        req.note = note or req.note
        _move(
            req,
            S.AWAITING_PRESCRIBER,
            actor=actor,
            reason=f"Forwarded to the prescriber{': ' + note if note else ''}",
            fields=("forwarded_at", "note"),
        )
        for send in _prescriber_senders:  # the signed link (refills/links.py, registered in apps.py)
            send(request=req, actor=actor)
        record_event(kind="refill.forwarded", actor=actor, subject=req, patient_id=req.patient_id,
                     summary="Forwarded to the prescriber")
    return req


@transaction.atomic
def refill_request_cancel(*, request_id: int, actor: Actor, reason: str = "") -> RefillRequest:
    req = _locked(request_id)
    _move(req, S.CANCELLED, actor=actor, reason=f"Cancelled{': ' + reason if reason else ''}")
    return req
