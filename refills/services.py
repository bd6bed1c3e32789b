"""Every state change of a refill or renewal request (DESIGN.md: RefillRequest).

Each service: keyword-only, one transaction, the row locked, the transition checked against
refills/choices.TRANSITIONS, history written with the actor and a reason, security-relevant
decisions recorded in the audit chain, and outbound NCPDP messages written to the outbox in the
same transaction.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy import workflow
from pharmacy.actors import Actor, SystemActor, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.interop.ncpdp import DENIAL_REASON_CODES
from pharmacy.models import Allergy, Coverage, Diagnosis, Fill, LabResult, Prescription, default_expiration
from pharmacy.roles import ADMIN, PHARMACIST, PRESCRIBER, has_role, require_role
from pharmacy.rules.allergy import allergy_conflicts

from . import authority, dispatch, facts, notifications
from .choices import OPEN_STATUSES, RefillStatus, RequestKind, RequestSource, can_transition
from .conf import eligibility_policy
from .eligibility import OVERRIDABLE_CODES, check_eligibility
from .models import ProtocolRule, RefillRequest
from .protocol import decide
from .triage import triage_facts, triage_summary

S = RefillStatus
PROTOCOL = system_actor("system:refill-protocol")
INTAKE = system_actor("system:patient-intake")


def _locked(request_id: int) -> RefillRequest:
    return workflow.locked(RefillRequest, request_id, label="refill request")


def refill_request_move(req: RefillRequest, target: str, *, actor: Actor, reason: str,
                        fields: tuple[str, ...] = ()) -> None:
    """Move a locked request to ``target`` (checked against refills/choices.TRANSITIONS, saved with
    the actor and the reason): the core workflow helper with this app's table, for every refill
    write module (links, new prescriptions, inbound)."""
    workflow.move(req, target, transitions=can_transition, label="refill request", actor=actor, reason=reason,
                  fields=fields)


_move = refill_request_move


def _patient_id(req: RefillRequest) -> int:
    return req.patient_id


# --- opening and evaluating -------------------------------------------------------------------

def refill_request_open(*, prescription: Prescription, actor: Actor, source: str, kind: str | None = None,
                        reason: str = "", run_out_date: date | None = None, pharmacy_message_id: str = "",
                        pharmacy_requested_refills: int | None = None, intake=None, match_confidence=None,
                        triage_summary: dict | None = None, evaluate: bool = True) -> RefillRequest:
    """Open a request for a prescription (one open request per prescription, DESIGN.md)."""
    if source not in RequestSource.values:
        raise ValidationError({"source": f"Unknown source {source!r}."})
    try:
        with transaction.atomic():
            if RefillRequest.objects.filter(prescription=prescription, status__in=OPEN_STATUSES).exists():
                raise DomainError("This prescription already has an open refill request.",
                                  code="duplicate_open_request")
            needs_renewal = prescription.refills_remaining == 0 or prescription.dea_schedule == "2"
            req = RefillRequest(
                prescription=prescription, patient_id=prescription.patient_id, source=source,
                kind=kind or (RequestKind.RENEWAL if needs_renewal else RequestKind.REFILL),
                is_urgent=prescription.drug.is_urgent, run_out_date=run_out_date,
                pharmacy_id=prescription.pharmacy_id, prescriber_id=prescription.prescriber_id,
                pharmacy_message_id=pharmacy_message_id, pharmacy_requested_refills=pharmacy_requested_refills,
                intake=intake, match_confidence=match_confidence, triage_summary=triage_summary or {},
            )
            save_with_history(req, actor=actor, reason=reason or f"Opened ({source})")
    except IntegrityError as exc:  # a concurrent opener won the race (partial unique constraint)
        raise DomainError("This prescription already has an open refill request.",
                          code="duplicate_open_request") from exc
    if evaluate:
        req = refill_request_evaluate(request_id=req.pk)
    return req


def refill_request_evaluate(*, request_id: int, today: date | None = None) -> RefillRequest:
    """Eligibility + refill protocol on a received request: auto_approved (mode auto and every
    check passed) or needs_review with the suggestion and the rule trace stored."""
    today = today or timezone.localdate()
    with transaction.atomic():
        req = _locked(request_id)
        if req.status != S.RECEIVED:
            raise TransitionNotAllowed(model="refill request", current=req.status, target="evaluated")
        rx = Prescription.objects.select_related("drug", "patient").get(pk=req.prescription_id)
        fills = list(rx.fills.all())
        patient = rx.patient
        has_coverage = Coverage.objects.filter(patient=patient, is_active=True).exists()
        other_open = RefillRequest.objects.filter(prescription=rx, status__in=OPEN_STATUSES).exclude(pk=req.pk).exists()
        conflicts = allergy_conflicts(rx.drug, Allergy.objects.filter(patient=patient))
        result = check_eligibility(prescription=facts.prescription_facts(rx, fills),
                                   patient=facts.patient_facts(patient, has_coverage=has_coverage),
                                   has_open_request=other_open, today=today, policy=eligibility_policy(),
                                   kind=req.kind, allergy_conflicts=facts.conflict_labels(conflicts))
        last_auto = (RefillRequest.objects.filter(prescription=rx, decided_by__username="system:refill-protocol")
                     .exclude(pk=req.pk).order_by("-decided_at").values_list("decided_at", flat=True).first())
        labs = LabResult.objects.filter(patient=patient, collected_at__gte=timezone.now() - timedelta(days=800))
        decision = decide(facts.protocol_rules(), facts.protocol_facts(
            rx=rx, fills=fills, labs=labs, eligibility=result, allergy_conflict=bool(conflicts),
            last_protocol_approval=last_auto.date() if last_auto else None), today)
        from .models import ProtocolRule as Row

        rule_row = Row.objects.filter(name=decision.rule_name).first() if decision.rule_name else None
        if result.kind_required != req.kind:
            req.kind = result.kind_required
        decision = _with_duplication(decision, rx=rx)
        decision = _with_interactions(decision, rx=rx)
        decision = _with_authority(decision, req=req, rx=rx, rule_row=rule_row, today=today)
        req.eligibility = facts.reasons_as_json(result)
        req.protocol_trace = facts.trace_as_json(decision)
        req.protocol_mode, req.protocol_outcome = decision.mode, decision.outcome
        req.protocol_suggestion = decision.suggested_action if decision.outcome != "approve" else "approve"
        if result.run_out_date and not req.run_out_date:
            req.run_out_date = result.run_out_date
        req.protocol_rule = rule_row
        fields = ("eligibility", "protocol_trace", "protocol_mode", "protocol_outcome", "protocol_suggestion",
                  "run_out_date", "kind", "protocol_rule")
        if decision.auto_approve and result.eligible:
            req.decided_by = PROTOCOL_USER()
            req.decided_at = timezone.now()
            req.agreement_id = _protocol_agreement(req, rx, rule_row, today)
            req.note = f"Approved by protocol rule “{decision.rule_name}”"
            if req.agreement_id:
                req.note += f" under collaborative practice agreement #{req.agreement_id}"
            _move(
                req,
                S.AUTO_APPROVED,
                actor=PROTOCOL,
                reason=f"Protocol rule {decision.rule_name}: every check passed"
                       + (f" (collaborative practice agreement #{req.agreement_id})" if req.agreement_id else ""),
                fields=(*fields, "decided_by", "decided_at", "note", "agreement"),
            )
            _authorize(req, actor=PROTOCOL, response="Approved",
                       message_note=(f"Protocol under CPA #{req.agreement_id} (collaborative practice agreement); "
                                     f"rule {decision.rule_name}"[:210] if req.agreement_id else ""))
            record_event(kind="refill.auto_approved", actor=PROTOCOL, subject=req, patient_id=req.patient_id,
                         summary=f"Auto-approved by rule {decision.rule_name}")
        else:
            why = "; ".join(c["name"] for c in req.protocol_trace if not c["passed"]) or decision.outcome
            _move(req, S.NEEDS_REVIEW, actor=PROTOCOL,
                  reason=f"To a pharmacist ({decision.mode} mode; {why})"[:500], fields=fields)
        if req.status == S.AUTO_APPROVED:
            _notify(req, "decision")  # through the outbox, in the decision's transaction
    _store_triage(req)
    return req


def _store_triage(req: RefillRequest) -> None:
    """The request's triage summary (refills/triage.py), stored after evaluation; a failure here
    never undoes the evaluation."""
    try:
        req.triage_summary = refill_request_store_triage(request_id=req.pk, actor=PROTOCOL).triage_summary
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).exception("Triage summary for refill request %s failed", req.pk)


def refill_request_store_triage(*, request_id: int, actor: Actor | None = None) -> RefillRequest:
    """(Re)compute and store a request's triage summary (refills/triage.py) from the records on file."""
    today = timezone.localdate()
    with transaction.atomic():
        req = RefillRequest.objects.select_for_update().get(pk=request_id)
        rx = Prescription.objects.select_related("drug", "patient").get(pk=req.prescription_id)
        patient = rx.patient
        rule = ProtocolRule.objects.filter(pk=req.protocol_rule_id).first() if req.protocol_rule_id else None
        loinc = [code for lab in (rule.required_labs if rule else []) for code in lab.get("loinc_codes", [])]
        message = req.intake.text if req.intake_id else ""
        facts = triage_facts(
            rx=rx, patient=patient, today=today, fills=Fill.objects.filter(prescription=rx),
            diagnoses=Diagnosis.objects.filter(patient=patient), allergies=Allergy.objects.filter(patient=patient),
            labs=LabResult.objects.filter(patient=patient, collected_at__gte=timezone.now() - timedelta(days=400)),
            kind=req.kind, status=req.status, run_out_date=req.run_out_date, eligibility=req.eligibility or [],
            protocol_suggestion=req.protocol_suggestion, relevant_loinc=loinc, message_text=message,
            extra={"message": message[:500]} if message else None)
        req.triage_summary = triage_summary(facts)
        save_with_history(req, actor=actor or INTAKE, reason="Triage summary updated", update_fields=["triage_summary"])
    return req


def _with_authority(decision, *, req: RefillRequest, rx: Prescription, rule_row, today: date):
    """A protocol verdict "approve" holds only when the rule may authorize this request
    (pharmacy/rules/authority.py: a renewal only under the agreement the rule names, never
    Schedule II–V) and within the limits; otherwise the request goes to a person, with the reason
    in the trace."""
    import dataclasses

    from .protocol import Check

    if decision.outcome != "approve":
        return decision
    answer = authority.authority_for(req, rx, PROTOCOL, agreement_id=rule_row.agreement_id if rule_row else None,
                                     today=today)
    detail = f"{answer.message} ({answer.citation})"
    if answer.allowed:
        try:
            authority.limits_check(req, rx, authority.change_of(), today=today, renewal=answer.kind == "renewal")
        except ValidationError as exc:
            answer, detail = None, "; ".join(exc.messages)
    if answer is not None and answer.allowed:
        return dataclasses.replace(decision, trace=(*decision.trace, Check("authorized", True, detail)))
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber",
                               trace=(*decision.trace, Check("authorized", False, detail)))


def _with_duplication(decision, *, rx: Prescription):
    """Drug utilization review, therapeutic duplication (docs/standards.md: two active prescriptions
    in the same class): a protocol never approves over one; a person looks."""
    import dataclasses

    from .protocol import Check

    if decision.outcome != "approve" or not rx.drug.therapeutic_class:
        return decision
    others = list(Prescription.objects.filter(patient_id=rx.patient_id, status="active",
                                              drug__therapeutic_class=rx.drug.therapeutic_class)
                  .exclude(pk=rx.pk).select_related("drug")[:3])
    if not others:
        return dataclasses.replace(decision, trace=(*decision.trace, Check(
            "no_therapeutic_duplication", True, "no other active prescription in the same class")))
    names = ", ".join(str(o.drug) for o in others)
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber", trace=(
        *decision.trace, Check("no_therapeutic_duplication", False,
                               f"therapeutic duplication: also active in {rx.drug.therapeutic_class}: {names}")))


def _with_interactions(decision, *, rx: Prescription):
    """Drug utilization review, the ONC high-priority drug–drug interactions (Phansalkar et al.,
    JAMIA 2012; pharmacy/rules/interactions.py): a protocol never approves over one; a person looks."""
    import dataclasses

    from .protocol import Check

    if decision.outcome != "approve":
        return decision
    from pharmacy.selectors import drug_interactions

    found = drug_interactions(rx)
    if not found:
        return dataclasses.replace(decision, trace=(*decision.trace, Check(
            "no_high_priority_interaction", True, "no ONC high-priority interaction with another active drug")))
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber", trace=(
        *decision.trace, Check("no_high_priority_interaction", False, "; ".join(f.message for f in found))))


def _protocol_agreement(req: RefillRequest, rx: Prescription, rule_row, today: date) -> int | None:
    answer = authority.authority_for(req, rx, PROTOCOL, agreement_id=rule_row.agreement_id if rule_row else None,
                                     today=today)
    return answer.agreement.id if answer.agreement else None


def PROTOCOL_USER():  # noqa: N802 — the user row behind the protocol's system actor
    from pharmacy.actors import actor_user

    return actor_user(PROTOCOL)


# --- claiming ---------------------------------------------------------------------------------

@transaction.atomic
def refill_request_claim(*, request_id: int, actor) -> RefillRequest:
    req = _locked(request_id)
    if not req.is_open:
        raise TransitionNotAllowed(model="refill request", current=req.status, target="claimed")
    if req.claimed_by_id and req.claimed_by_id != actor.pk:
        raise DomainError(f"Already claimed by {req.claimed_by.get_full_name() or req.claimed_by.username}.",
                          code="already_claimed")
    req.claimed_by, req.claimed_at = actor, timezone.now()
    save_with_history(req, actor=actor, reason="Claimed", update_fields=["claimed_by", "claimed_at"])
    return req


@transaction.atomic
def refill_request_unclaim(*, request_id: int, actor) -> RefillRequest:
    req = _locked(request_id)
    if req.claimed_by_id and req.claimed_by_id != actor.pk and not has_role(actor, PHARMACIST, ADMIN):
        raise PermissionDenied("Only the claimer or a pharmacist may release this request.")
    req.claimed_by, req.claimed_at = None, None
    save_with_history(req, actor=actor, reason="Released", update_fields=["claimed_by", "claimed_at"])
    return req


def _check_not_claimed_by_other(req: RefillRequest, actor) -> None:
    if isinstance(actor, SystemActor) or not req.claimed_by_id:
        return
    if req.claimed_by_id != actor.pk:
        raise DomainError(f"{req.claimed_by.username} is working on this request; ask them or release it first.",
                          code="claimed_by_other")


def _may_decide(req: RefillRequest, actor, verb: str) -> None:
    """Clinical decisions: pharmacists/admins; prescribers (or their link) only when awaiting them.
    A technician never records a clinical approval."""
    if isinstance(actor, SystemActor):
        return
    if req.status == S.AWAITING_PRESCRIBER and has_role(actor, PRESCRIBER):
        return
    require_role(actor, PHARMACIST, ADMIN, action=f"{verb} a refill request")


# --- decisions --------------------------------------------------------------------------------

def _eligibility_gate(req: RefillRequest, rx: Prescription, actor: Actor, *, kind: str, today: date,
                      override_reason: str) -> list[str]:
    """Blocking findings stop every approval (API 409 ``not_eligible`` with the finding codes). An
    allergy conflict or a refill too soon may be overridden by a pharmacist — a person, with a
    reason — never by a protocol or a link. Returns the codes overridden."""
    result = facts.current_eligibility(rx, kind=kind, today=today)
    blocking = result.blocking_reasons
    if not blocking:
        return []
    decider = authority.decider_for(actor, req, rx)
    overridable = all(r.code in OVERRIDABLE_CODES for r in blocking)
    if overridable and override_reason.strip() and decider.kind == "pharmacist":
        return [r.code for r in blocking]
    hint = ""
    if overridable:
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
        out["quantity"] = {"from": str(rx.quantity.normalize()), "to": str(quantity.normalize())}
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
        from pharmacy.actors import actor_user

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
        from pharmacy.actors import actor_user

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


# --- after the decision -----------------------------------------------------------------------

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
            save_with_history(fill, actor=actor, reason=f"Fill reported for refill request {req.pk}")
        if target == S.FILLED:
            _notify(req, "ready")  # through the outbox, in the fill's transaction
    return req


@transaction.atomic
def refill_request_mark_picked_up(*, request_id: int, actor: Actor) -> RefillRequest:
    req = _locked(request_id)
    _move(req, S.PICKED_UP, actor=actor, reason="Picked up")
    return req


def _notify(req: RefillRequest, event: str) -> None:
    """Patient messages (refills.notifications): an outbox row written in the decision's
    transaction (inside a savepoint), so a crash after the commit cannot lose it; a message that
    cannot be queued never blocks the decision."""
    if event == "decision" and hasattr(notifications, "notify_refill_decision"):
        notifications.notify_refill_decision(req)
    elif event == "ready" and hasattr(notifications, "notify_ready_for_pickup"):
        notifications.notify_ready_for_pickup(req)


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


# --- protocol rules ---------------------------------------------------------------------------

@transaction.atomic
def protocol_rules_load_defaults(*, actor: Actor, replace: bool = False) -> tuple[int, int]:
    """Load the shipped rule set (refills/protocol_defaults.py, with its sources) into ProtocolRule
    rows. Existing rules keep the practice's edits unless ``replace``; a replaced rule keeps its
    mode, so loading never switches a rule to ``auto`` behind anyone's back. Returns (created, updated)."""
    from .models import ProtocolRule
    from .protocol_defaults import default_rule_rows

    if not isinstance(actor, SystemActor):
        require_role(actor, ADMIN, action="load the default refill protocol rules")
    existing = {rule.name: rule for rule in ProtocolRule.objects.select_for_update()}
    created = updated = 0
    for order, row in enumerate(default_rule_rows()):
        fields = {k: v for k, v in row.items() if k in _PROTOCOL_RULE_FIELDS and k != "name"}
        fields.setdefault("priority", (order + 1) * 10)
        rule = existing.get(row["name"])
        if rule is None:
            rule = ProtocolRule(name=row["name"], **fields)
            rule.full_clean()
            save_with_history(rule, actor=actor, reason="Default refill protocol rule loaded")
            created += 1
        elif replace:
            fields.pop("mode", None)
            for key, value in fields.items():
                setattr(rule, key, value)
            rule.full_clean()
            save_with_history(rule, actor=actor, reason="Default refill protocol rule reloaded (mode kept)")
            updated += 1
    if created or updated:
        record_event(
            kind="settings.protocol_rules_loaded",
            actor=actor,
            summary=f"{created} created, {updated} updated",
            data={"created": created, "updated": updated, "replace": replace},
        )
    return created, updated


def _protocol_rule_fields() -> frozenset[str]:
    from .models import ProtocolRule

    return frozenset(f.name for f in ProtocolRule._meta.concrete_fields if f.name != "id")


_PROTOCOL_RULE_FIELDS = _protocol_rule_fields()
