"""Opening a refill or renewal request, evaluating it (eligibility + the refill protocol), its
triage summary, and claiming it (DESIGN.md: RefillRequest)."""
from __future__ import annotations

import logging
from datetime import date, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, save_with_history
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.models import Allergy, Coverage, Diagnosis, Fill, LabResult, Prescription
from pharmacy.roles import ADMIN, PHARMACIST, has_role
from pharmacy.rules.allergy import allergy_conflicts

from .. import facts
from ..choices import OPEN_STATUSES, RequestKind, RequestSource
from ..conf import eligibility_policy
from ..eligibility import check_eligibility
from ..models import ProtocolRule, RefillRequest
from ..protocol import decide
from ..triage import triage_facts, triage_summary
from ._common import INTAKE, PROTOCOL, PROTOCOL_USER, S, _locked, _move, _notify
from .decisions import _authorize
from .protocol_rules import _protocol_agreement, _with_authority, _with_duplication, _with_interactions

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
        rule_row = ProtocolRule.objects.filter(name=decision.rule_name).first() if decision.rule_name else None
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
