"""Every state change of a PA case (DESIGN.md: PACase).

Each service: keyword-only, one transaction, the case row locked, the transition checked against
priorauth/choices.TRANSITIONS, history written with the actor and a reason, audit events for
submissions and decisions, and outbound payer messages written to the outbox in the same
transaction (delivered after commit).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, actor_user, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.messaging.notify import patient_message_enqueue
from pharmacy.messaging.outbox import outbox_enqueue
from pharmacy.models import Coverage, Prescription
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, require_role

from . import adapters, conf
from . import evidence as ev
from .choices import (
    AWAITING_PAYER,
    OPEN_STATUSES,
    PA_REQUIRED,
    REJECT_CODES,
    Adapter,
    AutoReview,
    Benefit,
    CaseStatus,
    Decision,
    ResponseSource,
    RolloutMode,
    Trigger,
    can_transition,
)
from .criteria import check_criteria, spec_from_dict
from .deadlines import decision_due
from .models import (
    ClaimRejection,
    PAAttachment,
    PACase,
    PAResponse,
    PASubmission,
    Payer,
    PayerCriteria,
    PrescriptionAuthorization,
)
from .rollout import agreement, auto_trace

S = CaseStatus
STATUS_ACTOR = system_actor("system:pa-status")
ROLLOUT_ACTOR = system_actor("system:pa-rollout")
PREPARE_ROLES = (PHARMACIST, TECHNICIAN, ADMIN)
DECIDE_ROLES = (PHARMACIST, ADMIN)
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
EDITABLE = (S.READY_FOR_REVIEW, S.PENDED, S.DENIED)


def _locked(case_id: int) -> PACase:
    try:
        return PACase.objects.select_for_update().get(pk=case_id)
    except PACase.DoesNotExist as exc:
        raise DomainError(f"PA case {case_id} does not exist.", code="not_found") from exc


def _move(case: PACase, target: str, *, actor: Actor, reason: str, fields: tuple[str, ...] = ()) -> None:
    if not can_transition(case.status, target):
        raise TransitionNotAllowed(model="PA case", current=case.status, target=target)
    case.status = target
    save_with_history(case, actor=actor, reason=reason[:500], update_fields=["status", *fields])
    _sync_prescription_status(case, actor=actor)


def _sync_prescription_status(case: PACase, *, actor: Actor) -> None:
    """The prescription's PA status follows its latest case."""
    row = (
        PrescriptionAuthorization.objects.select_for_update()
        .filter(prescription_id=case.prescription_id)
        .first()
    )
    values = {
        "case": case,
        "status": case.status,
        "authorization_number": case.authorization_number,
        "effective_date": case.effective_date,
        "expiration_date": case.expiration_date,
    }
    if row is None:
        row = PrescriptionAuthorization(prescription_id=case.prescription_id, **values)
        save_with_history(row, actor=actor, reason=f"PA case {case.pk}: {case.get_status_display()}")
        return
    if row.case_id != case.pk and row.case.created_at > case.created_at:
        return  # a newer case (e.g. a renewal) speaks for the prescription
    current = {
        "case": row.case_id,
        "status": row.status,
        "authorization_number": row.authorization_number,
        "effective_date": row.effective_date,
        "expiration_date": row.expiration_date,
    }
    changed = [k for k, v in values.items() if current[k] != (v.pk if k == "case" else v)]
    if changed:
        for k, v in values.items():
            setattr(row, k, v)
        save_with_history(
            row, actor=actor, reason=f"PA case {case.pk}: {case.get_status_display()}", update_fields=changed
        )


def _user(actor: Actor):
    return actor_user(actor)


# --- payer, criteria -----------------------------------------------------------------------------


def payer_for(*, bin: str, pcn: str = "") -> Payer | None:
    rows = list(Payer.objects.filter(bin=bin, is_active=True).filter(Q(pcn=pcn) | Q(pcn="")))
    rows.sort(key=lambda p: p.pcn == "")  # an exact PCN wins over the BIN-wide row
    return rows[0] if rows else None


def criteria_for(*, payer: Payer | None, drug) -> PayerCriteria | None:
    if payer is None:
        return None
    rows = PayerCriteria.objects.filter(payer=payer, is_active=True)
    by_drug = rows.filter(drug_name__iexact=drug.name).first()
    if by_drug:
        return by_drug
    if drug.therapeutic_class:
        return rows.filter(drug_name="", therapeutic_class=drug.therapeutic_class).first()
    return None


# --- claim rejections (trigger) ------------------------------------------------------------------


def claim_rejection_receive(
    *,
    actor: Actor,
    claim_reference: str,
    patient,
    prescription: Prescription | None,
    drug,
    ndc: str,
    bin: str,
    pcn: str,
    group: str,
    reject_codes: list[str],
    rejected_at,
) -> tuple[ClaimRejection, bool]:
    """Store the rejected claim (one row per claim reference) and open a PA case when a code is
    75 (NCPDP reject 75 = prior authorization required, DESIGN.md); other codes (70 not covered,
    MR not on formulary, 76 plan limits, 79 refill too soon …) are recorded as their own reasons.
    Returns (rejection, created); a repeated delivery returns the first row and its case."""
    codes = [str(c).strip().upper() for c in reject_codes]
    try:
        with transaction.atomic():
            existing = (
                ClaimRejection.objects.select_for_update().filter(claim_reference=claim_reference).first()
            )
            if existing is not None:
                existing.deliveries += 1
                save_with_history(
                    existing,
                    actor=actor,
                    reason=f"Repeated delivery #{existing.deliveries}",
                    update_fields=["deliveries"],
                )
                return existing, False
            reasons = []
            for code in codes:
                reasons.append(
                    {
                        "code": code,
                        "meaning": REJECT_CODES.get(code, "Unknown reject code"),
                        "action": "PA case opened" if code == PA_REQUIRED else "Recorded (no PA case)",
                    }
                )
            rejection = ClaimRejection(
                claim_reference=claim_reference,
                prescription=prescription,
                patient=patient,
                drug=drug,
                ndc=ndc,
                bin=bin,
                pcn=pcn,
                group=group,
                reject_codes=codes,
                reasons=reasons,
                rejected_at=rejected_at,
            )
            save_with_history(rejection, actor=actor, reason=f"Claim rejected ({', '.join(codes)})")
            if PA_REQUIRED in codes:
                if prescription is None:
                    raise ValidationError(
                        {
                            "prescription": "Reject 75 needs a prescription (or patient and NDC "
                            "matching one) to open a PA case."
                        }
                    )
                case = PACase.objects.filter(prescription=prescription, status__in=OPEN_STATUSES).first()
                if case is None:
                    case = pa_case_open(
                        prescription_id=prescription.pk,
                        actor=actor,
                        trigger=Trigger.REJECT_75,
                        claim_reference=claim_reference,
                        bin=bin,
                        pcn=pcn,
                    )
                else:
                    reasons[codes.index(PA_REQUIRED)]["action"] = f"Joined open PA case {case.pk}"
                    rejection.reasons = reasons
                rejection.case = case
                save_with_history(
                    rejection,
                    actor=actor,
                    reason=f"Linked to PA case {case.pk}",
                    update_fields=["case", "reasons"],
                )
            return rejection, True
    except IntegrityError:  # a concurrent delivery of the same claim won the race
        if not ClaimRejection.objects.filter(claim_reference=claim_reference).exists():
            raise
        with transaction.atomic():  # count this delivery on the winner's row
            existing = ClaimRejection.objects.select_for_update().get(claim_reference=claim_reference)
            existing.deliveries += 1
            save_with_history(existing, actor=actor, reason=f"Repeated delivery #{existing.deliveries}",
                              update_fields=["deliveries"])
        return existing, False


# --- opening, evidence, criteria, draft ------------------------------------------------------------


def _coverage(rx: Prescription, bin: str = "", pcn: str = "") -> Coverage | None:
    coverages = list(Coverage.objects.filter(patient_id=rx.patient_id, is_active=True).order_by("priority"))
    if bin:
        exact = [c for c in coverages if c.bin == bin and (not pcn or c.pcn == pcn)]
        if exact:
            return exact[0]
    return coverages[0] if coverages else None


def _facts(case: PACase, rx: Prescription, expedited: bool) -> dict:
    p, d = rx.patient, rx.prescriber
    return {
        "drug": str(rx.drug),
        "patient_name": p.full_name,
        "birth_date": p.birth_date.isoformat(),
        "member_id": case.coverage.member_id if case.coverage else "",
        "payer_name": case.payer.name if case.payer else (case.coverage.payer_name if case.coverage else ""),
        "prescriber_name": str(d),
        "quantity": f"{rx.quantity.normalize():f}",
        "days_supply": rx.days_supply,
        "pharmacy_name": rx.pharmacy.name if rx.pharmacy else "",
        "expedited": expedited,
        "payer_case_id": case.payer_case_id,
    }


def _analyse(case: PACase, rx: Prescription, *, today: date) -> None:
    """Gather evidence, check criteria, draft (in memory; the caller saves)."""
    case.evidence = ev.gather(rx=rx, coverage=case.coverage, today=today)
    if case.criteria is not None:
        result = check_criteria(
            spec_from_dict(case.criteria.as_spec_dict()),
            ev.facts_from(evidence=case.evidence, rx=rx, today=today),
        )
        case.criteria_result = result.as_dict()
        case.is_expedited = result.expedited or case.is_expedited
    else:
        case.criteria_result = {
            "items": [],
            "all_met": False,
            "expedited": False,
            "asks": [],
            "counts": {},
            "note": "No payer criteria configured for this payer and drug.",
        }
    if case.rollout_mode == RolloutMode.OFF:
        case.system_letter, case.system_fields, case.system_statements, case.drafter = "", {}, [], ""
        case.missing = [
            f"{i['name']}: {i['detail']}" for i in case.criteria_result["items"] if i["status"] != "met"
        ]
        return
    draft = conf.drafter().draft(
        facts=_facts(case, rx, case.is_expedited), evidence=case.evidence, criteria=case.criteria_result
    )
    case.system_letter, case.system_fields = draft.letter, draft.fields
    case.system_statements = [s.as_dict() for s in draft.statements] + [
        {"field": k, "sources": [x.strip() for x in v.split(",")]} for k, v in draft.field_sources.items()
    ]
    case.missing, case.drafter = draft.missing, draft.drafter


ANALYSIS_FIELDS = (
    "evidence",
    "criteria_result",
    "is_expedited",
    "system_letter",
    "system_fields",
    "system_statements",
    "missing",
    "drafter",
)


def pa_case_open(
    *,
    prescription_id: int,
    actor: Actor,
    trigger: str = Trigger.STAFF,
    claim_reference: str = "",
    bin: str = "",
    pcn: str = "",
    renewal_of: PACase | None = None,
    today: date | None = None,
) -> PACase:
    """Open a case, gather evidence, check criteria, draft; then the rollout mode decides whether
    it waits for a pharmacist or is submitted automatically."""
    if not isinstance(actor, SystemActor) and trigger == Trigger.STAFF:
        require_role(actor, *PREPARE_ROLES, action="open a PA case")
    today = today or timezone.localdate()
    try:
        with transaction.atomic():
            rx = (
                Prescription.objects.select_for_update(of=("self",))
                .select_related("drug", "patient", "prescriber", "pharmacy")
                .get(pk=prescription_id)
            )
            if PACase.objects.filter(prescription=rx, status__in=OPEN_STATUSES).exists():
                raise DomainError(
                    "This prescription already has an open PA case.", code="duplicate_open_case"
                )
            coverage = _coverage(rx, bin, pcn)
            payer = payer_for(
                bin=bin or (coverage.bin if coverage else ""), pcn=pcn or (coverage.pcn if coverage else "")
            )
            criteria = criteria_for(payer=payer, drug=rx.drug)
            benefit = criteria.benefit if criteria else Benefit.PHARMACY
            case = PACase(
                prescription=rx,
                patient=rx.patient,
                drug=rx.drug,
                coverage=coverage,
                payer=payer,
                criteria=criteria,
                trigger=trigger,
                claim_reference=claim_reference,
                renewal_of=renewal_of,
                benefit=benefit,
                adapter=Adapter.PAS if benefit == Benefit.MEDICAL else Adapter.EPA,
                rollout_mode=criteria.rollout_mode if criteria else RolloutMode.ASSIST,
                is_expedited=False,
                opened_by=_user(actor),
            )
            label = {
                Trigger.REJECT_75: f"claim {claim_reference} rejected 75",
                Trigger.RENEWAL: f"renewal of case {renewal_of.pk if renewal_of else ''} before expiry",
                Trigger.STAFF: "opened by staff",
            }[trigger]
            save_with_history(case, actor=actor, reason=f"Opened: {label}")
            _move(case, S.GATHERING, actor=actor, reason="Gathering evidence")
            _analyse(case, rx, today=today)
            if case.draft_visible:
                case.letter, case.fields = case.system_letter, dict(case.system_fields)
            _move(
                case,
                S.READY_FOR_REVIEW,
                actor=actor,
                reason=f"Evidence gathered ({len(case.evidence)} items); criteria "
                f"{case.criteria_result.get('counts', {})}; mode {case.rollout_mode}",
                fields=(*ANALYSIS_FIELDS, "letter", "fields"),
            )
            record_event(
                kind="pa.opened",
                actor=actor,
                subject=case,
                patient_id=case.patient_id,
                summary=f"PA case opened ({label})",
                data={"mode": case.rollout_mode},
            )
            go, trace = auto_trace(
                mode=case.rollout_mode,
                has_criteria=case.criteria_id is not None,
                criteria_result=case.criteria_result,
                missing=case.missing,
                letter=case.letter,
                has_payer=case.payer_id is not None,
                drafter=case.drafter,
            )
            case.auto_trace = trace
            save_with_history(
                case, actor=actor, reason="Rollout rules evaluated", update_fields=["auto_trace"]
            )
            if go:
                _submit(case, actor=ROLLOUT_ACTOR, automatic=True)
            elif case.rollout_mode == RolloutMode.AUTO:
                _notice(case, "Auto mode: not every criterion met — needs a pharmacist", actor=actor)
    except IntegrityError as exc:
        raise DomainError(
            "This prescription already has an open PA case.", code="duplicate_open_case"
        ) from exc
    return case


@transaction.atomic
def pa_case_refresh(*, case_id: int, actor: Actor, today: date | None = None) -> PACase:
    """Gather evidence again (new labs, fills) and redraft; a person's edits are kept."""
    require_role(actor, *PREPARE_ROLES, action="refresh a PA case")
    case = _locked(case_id)
    if case.status not in EDITABLE:
        raise TransitionNotAllowed(model="PA case", current=case.status, target="refreshed")
    rx = Prescription.objects.select_related("drug", "patient", "prescriber", "pharmacy").get(
        pk=case.prescription_id
    )
    _analyse(case, rx, today=today or timezone.localdate())
    save_with_history(
        case, actor=actor, reason="Evidence gathered again and redrafted", update_fields=list(ANALYSIS_FIELDS)
    )
    return case


@transaction.atomic
def pa_case_edit(
    *,
    case_id: int,
    actor: Actor,
    letter: str | None = None,
    fields: dict | None = None,
    answers: dict | None = None,
) -> PACase:
    """Technicians and pharmacists prepare the letter, fields and answers (kept in history)."""
    require_role(actor, *PREPARE_ROLES, action="edit a PA case")
    case = _locked(case_id)
    if case.status not in EDITABLE:
        raise TransitionNotAllowed(model="PA case", current=case.status, target="edited")
    changed = []
    if letter is not None and letter != case.letter:
        case.letter = letter
        changed.append("letter")
    if fields is not None and fields != case.fields:
        case.fields = {str(k): str(v) for k, v in fields.items()}
        changed.append("fields")
    if answers is not None and answers != case.answers:
        case.answers = {str(k): str(v) for k, v in answers.items()}
        changed.append("answers")
    if changed:
        save_with_history(case, actor=actor, reason=f"Edited: {', '.join(changed)}", update_fields=changed)
    return case


@transaction.atomic
def pa_attachment_add(
    *, case_id: int, actor: Actor, file_name: str, mime_type: str, data: bytes
) -> PAAttachment:
    require_role(actor, *PREPARE_ROLES, action="attach documents")
    case = _locked(case_id)
    if not case.is_open:
        raise TransitionNotAllowed(model="PA case", current=case.status, target="attachment added")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            {"file": f"Attachments are limited to {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB."}
        )
    if not data:
        raise ValidationError({"file": "The file is empty."})
    attachment = PAAttachment(
        case=case,
        file_name=file_name[:200],
        mime_type=mime_type[:100] or "application/octet-stream",
        data=data,
        size=len(data),
        added_by=_user(actor),
    )
    save_with_history(attachment, actor=actor, reason=f"Attached {file_name[:100]}")
    save_with_history(case, actor=actor, reason=f"Attachment added: {file_name[:100]}", update_fields=[])
    return attachment


# --- submission ------------------------------------------------------------------------------------


def _enqueue(case: PACase, out: adapters.Outbound, *, actor: Actor, submitted_by) -> PASubmission:
    endpoint = conf.payer_endpoint(case.payer.endpoint_key if case.payer else "")
    url = endpoint.get("submit_url", "")
    if url and case.adapter == Adapter.PAS and not url.rstrip("/").endswith("$submit"):
        url = url.rstrip("/") + "/Claim/$submit"  # STANDARDS.md: POST [base]/Claim/$submit
    count = case.submissions.count()
    message = outbox_enqueue(
        kind=out.kind,
        payload=out.payload,
        transport="http" if url else "file",
        destination=url,
        actor=actor,
        reason=f"PA case {case.pk}: {out.submission_kind}",
        message_id=out.message_id,
        dedupe_key=f"pa:{case.pk}:{out.submission_kind}:{count}",
        content_type=out.content_type,
        credentials_env=endpoint.get("token_env", ""),
        related=case,
    )
    submission = PASubmission(
        case=case,
        kind=out.submission_kind,
        adapter=case.adapter,
        message_id=out.message_id,
        outbox=message,
        submitted_by=submitted_by,
    )
    save_with_history(submission, actor=actor, reason=f"{out.kind} queued")
    return submission


def _set_due(case: PACase, now) -> None:
    case.decision_due_at = decision_due(
        submitted_at=now,
        benefit=case.benefit,
        expedited=case.is_expedited,
        expedited_hours=case.payer.expedited_hours if case.payer else None,
        standard_hours=case.payer.standard_hours if case.payer else None,
    )


def _submit(case: PACase, *, actor: Actor, automatic: bool) -> None:
    if not case.letter.strip():
        raise ValidationError({"letter": "Write the medical-necessity letter before submitting."})
    now = timezone.now()
    if not automatic and case.system_letter:
        case.agreement = {
            **agreement(
                system_fields=case.system_fields,
                submitted_fields=case.fields,
                system_letter=case.system_letter,
                submitted_letter=case.letter,
            ),
            "mode": case.rollout_mode,
        }
    case.submitted_at, case.submitted_by, case.submitted_automatically = now, _user(actor), automatic
    _set_due(case, now)
    adapter = adapters.adapter_for(case)
    out = adapter.submission(case)
    case.attention = ""
    _move(
        case,
        S.SUBMITTED,
        actor=actor,
        reason=(
            "Submitted automatically (every rule passed)"
            if automatic
            else "Approved and submitted by pharmacist"
        )
        + f" via {case.get_adapter_display()}",
        fields=(
            "agreement",
            "submitted_at",
            "submitted_by",
            "submitted_automatically",
            "decision_due_at",
            "attention",
        ),
    )
    _enqueue(case, out, actor=actor, submitted_by=_user(actor))
    record_event(
        kind="pa.submitted",
        actor=actor,
        subject=case,
        patient_id=case.patient_id,
        summary=f"PA submitted {'automatically' if automatic else 'by pharmacist'} ({case.adapter})",
        data={
            "automatic": automatic,
            "message_id": out.message_id,
            "mode": case.rollout_mode,
            "trace": case.auto_trace if automatic else None,
        },
    )


def pa_case_submit(
    *, case_id: int, actor: Actor, letter: str | None = None, fields: dict | None = None
) -> PACase:
    """A pharmacist approves the case for submission (a technician cannot)."""
    require_role(actor, *DECIDE_ROLES, action="approve a PA submission")
    with transaction.atomic():
        case = _locked(case_id)
        if letter is not None:
            case.letter = letter
        if fields is not None:
            case.fields = {str(k): str(v) for k, v in fields.items()}
        if letter is not None or fields is not None:
            save_with_history(
                case, actor=actor, reason="Edited at submission", update_fields=["letter", "fields"]
            )
        if not can_transition(case.status, S.SUBMITTED) or case.status == S.PENDED:
            raise TransitionNotAllowed(model="PA case", current=case.status, target=S.SUBMITTED)
        _submit(case, actor=actor, automatic=False)
    return case


def pa_case_answer(*, case_id: int, actor: Actor, answers: dict[str, str]) -> PACase:
    """Answer the payer's questions (ePA PARequest; PAS resubmission) — pended → submitted."""
    require_role(actor, *DECIDE_ROLES, action="send answers to the payer")
    with transaction.atomic():
        case = _locked(case_id)
        if case.status != S.PENDED:
            raise TransitionNotAllowed(model="PA case", current=case.status, target=S.SUBMITTED)
        unanswered = [q["id"] for q in case.questions if not str(answers.get(q["id"], "")).strip()]
        if unanswered:
            raise ValidationError({"answers": f"Answer every question ({', '.join(unanswered)})."})
        case.answers = {str(k): str(v) for k, v in answers.items()}
        if case.adapter == Adapter.EPA and not case.payer_case_id:
            raise DomainError("The payer has not given a PA case ID to answer.", code="no_payer_case_id")
        out = adapters.adapter_for(case).answers(case, case.answers)
        now = timezone.now()
        _set_due(case, now)
        case.attention = ""
        _move(
            case,
            S.SUBMITTED,
            actor=actor,
            reason=f"Answers sent ({len(case.answers)})",
            fields=("answers", "decision_due_at", "attention"),
        )
        _enqueue(case, out, actor=actor, submitted_by=_user(actor))
        record_event(
            kind="pa.answered",
            actor=actor,
            subject=case,
            patient_id=case.patient_id,
            summary="Answers to payer questions sent",
            data={"questions": list(case.answers)},
        )
    return case


def pa_case_appeal(*, case_id: int, actor: Actor, letter: str | None = None) -> PACase:
    require_role(actor, *DECIDE_ROLES, action="appeal a PA denial")
    with transaction.atomic():
        case = _locked(case_id)
        if not can_transition(case.status, S.APPEALED):
            raise TransitionNotAllowed(model="PA case", current=case.status, target=S.APPEALED)
        if letter is not None:
            case.appeal_letter = letter
        if not case.appeal_letter.strip():
            raise ValidationError({"letter": "An appeal needs a letter."})
        out = adapters.adapter_for(case).appeal(case)
        _set_due(case, timezone.now())
        case.attention = ""
        _move(
            case,
            S.APPEALED,
            actor=actor,
            reason="Appeal submitted",
            fields=("appeal_letter", "decision_due_at", "attention"),
        )
        _enqueue(case, out, actor=actor, submitted_by=_user(actor))
        record_event(
            kind="pa.appealed",
            actor=actor,
            subject=case,
            patient_id=case.patient_id,
            summary="PA denial appealed",
            data={"message_id": out.message_id},
        )
    return case


def pa_case_cancel(*, case_id: int, actor: Actor, reason: str = "") -> PACase:
    if not isinstance(actor, SystemActor):
        require_role(actor, *PREPARE_ROLES, action="cancel a PA case")
    with transaction.atomic():
        case = _locked(case_id)
        payer_knows = case.status in (S.SUBMITTED, S.PENDED, S.APPEALED)
        case.attention = ""
        _move(
            case,
            S.CANCELLED,
            actor=actor,
            reason=f"Cancelled{': ' + reason if reason else ''}",
            fields=("attention",),
        )
        if payer_knows:
            _enqueue(
                case, adapters.adapter_for(case).cancel(case, reason), actor=actor, submitted_by=_user(actor)
            )
        record_event(
            kind="pa.cancelled",
            actor=actor,
            subject=case,
            patient_id=case.patient_id,
            summary="PA case cancelled",
            data={"reason": reason[:200]},
        )
    return case


@transaction.atomic
def pa_case_set_expedited(*, case_id: int, actor: Actor, expedited: bool, reason: str = "") -> PACase:
    """A pharmacist asks for expedited review (the prescriber attests that the standard timeframe
    could seriously jeopardize the patient's health — 42 CFR 423.570); sets the shorter deadline
    on submission (priorauth/deadlines.py)."""
    require_role(actor, *DECIDE_ROLES, action="request expedited review")
    case = _locked(case_id)
    if case.status != S.READY_FOR_REVIEW:
        raise TransitionNotAllowed(model="PA case", current=case.status, target="expedited")
    if expedited and not reason.strip():
        raise ValidationError({"reason": "Say why the standard timeframe could harm the patient."})
    case.is_expedited = expedited
    save_with_history(
        case,
        actor=actor,
        reason=(f"Expedited review requested: {reason.strip()}" if expedited else "Standard review")[:500],
        update_fields=["is_expedited"],
    )
    return case


@transaction.atomic
def pa_case_acknowledge(*, case_id: int, actor: Actor) -> PACase:
    require_role(actor, *PREPARE_ROLES, action="acknowledge a PA update")
    case = _locked(case_id)
    if case.attention:
        case.attention = ""
        save_with_history(case, actor=actor, reason="Update seen", update_fields=["attention"])
    return case


@transaction.atomic
def pa_case_review_auto(*, case_id: int, actor: Actor, verdict: str, note: str = "") -> PACase:
    """After-the-fact review of an automatic submission (feeds the error rate on analytics)."""
    require_role(actor, *DECIDE_ROLES, action="review an automatic submission")
    if verdict not in (AutoReview.OK, AutoReview.ERROR):
        raise ValidationError({"verdict": "Choose ok or error."})
    case = _locked(case_id)
    if not case.submitted_automatically:
        raise DomainError("Only automatic submissions are reviewed after the fact.", code="not_automatic")
    case.auto_review = verdict
    save_with_history(
        case,
        actor=actor,
        reason=f"Automatic submission reviewed: {verdict}{': ' + note if note else ''}"[:500],
        update_fields=["auto_review"],
    )
    return case


# --- payer responses ---------------------------------------------------------------------------------


def validate_push(data) -> tuple[dict, dict]:
    """(clean values, errors by field) for a pushed response (POST /api/v1/pa-responses/)."""
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        return {}, {"non_field_errors": "Expected a JSON object."}
    clean: dict = {}
    decision = data.get("decision")
    if decision not in Decision.values:
        errors["decision"] = f"Must be one of {', '.join(Decision.values)}."
    clean["decision"] = decision
    for name in ("effective_date", "expiration_date"):
        value = data.get(name)
        if value in (None, ""):
            clean[name] = None
            continue
        try:
            clean[name] = date.fromisoformat(str(value))
        except ValueError:
            errors[name] = "Not a date (YYYY-MM-DD)."
    number = data.get("authorization_number") or ""
    if not isinstance(number, str) or len(number) > 64:
        errors["authorization_number"] = "Must be text of at most 64 characters."
        number = ""
    clean["authorization_number"] = number.strip()
    for name in ("reasons", "questions"):
        value = data.get(name) or []
        if not isinstance(value, list):
            errors[name] = "Must be a list."
            value = []
        clean[name] = value
    if not all(isinstance(r, str) for r in clean["reasons"]):
        errors["reasons"] = "Each reason is text."
    questions = []
    for i, q in enumerate(clean["questions"]):
        if isinstance(q, str) and q.strip():
            questions.append({"id": f"Q{i + 1}", "text": q.strip(), "type": "FreeText", "choices": []})
        elif isinstance(q, dict) and str(q.get("text", "")).strip():
            questions.append(
                {
                    "id": str(q.get("id") or f"Q{i + 1}"),
                    "text": str(q["text"]).strip(),
                    "type": str(q.get("type") or "FreeText"),
                    "choices": q.get("choices") or [],
                }
            )
        else:
            errors["questions"] = f"Question {i + 1} needs text."
    clean["questions"] = questions
    if decision == Decision.APPROVED:
        if not clean["authorization_number"]:
            errors["authorization_number"] = "An approval needs an authorization number."
        if clean.get("effective_date") is None and "effective_date" not in errors:
            errors["effective_date"] = "An approval needs an effective date."
        if clean.get("expiration_date") is None and "expiration_date" not in errors:
            errors["expiration_date"] = "An approval needs an expiration date."
        if (
            clean.get("effective_date")
            and clean.get("expiration_date")
            and clean["expiration_date"] < clean["effective_date"]
        ):
            errors["expiration_date"] = "The expiration date is before the effective date."
    if decision == Decision.DENIED and not clean["reasons"]:
        errors["reasons"] = "A denial needs its reasons (CMS-0057-F: a specific denial reason)."
    if decision == Decision.PENDED and not clean["questions"] and "questions" not in errors:
        pass  # InProcess: pended without questions is allowed
    return clean, errors


def pa_response_receive(
    *, case_id, data, raw: str, source: str = ResponseSource.PUSH, actor: Actor = STATUS_ACTOR
) -> PAResponse:
    """Store the answer first (always), then apply it. A malformed answer is kept and flagged
    and changes nothing; an answer the case cannot take (e.g. cancelled) is kept with its error
    and raises TransitionNotAllowed."""
    case = PACase.objects.filter(pk=case_id).first() if str(case_id or "").isdigit() else None
    clean, errors = validate_push(data)
    if case is None:
        errors = {"case": "No such PA case.", **errors}
    response = PAResponse(
        case=case,
        source=source,
        raw=raw[:200_000],
        decision=clean.get("decision") or "",
        authorization_number=clean.get("authorization_number", ""),
        effective_date=clean.get("effective_date"),
        expiration_date=clean.get("expiration_date"),
        reasons=[str(r) for r in clean.get("reasons", [])][:50],
        questions=clean.get("questions", []),
        is_malformed=bool(errors),
        errors=errors,
    )
    if errors:
        response.decision = response.decision if response.decision in Decision.values else ""
        save_with_history(response, actor=actor, reason="Malformed payer response kept (case unchanged)")
        return response
    parsed = adapters.ParsedResponse(
        decision=clean["decision"],
        authorization_number=clean["authorization_number"],
        effective_date=clean["effective_date"],
        expiration_date=clean["expiration_date"],
        reasons=response.reasons,
        questions=clean["questions"],
        payer_case_id=str(data.get("payer_case_id") or ""),
    )
    return _store_and_apply(case, response, parsed, actor=actor)


def pa_response_ingest(*, case_id: int, text: str, source: str, actor: Actor = STATUS_ACTOR) -> PAResponse:
    """An answer read from the payer (poll, or the body of our delivery) in the adapter's format."""
    case = PACase.objects.get(pk=case_id)
    try:
        parsed = adapters.adapter_for(case).parse(text)
    except adapters.AdapterError as exc:
        response = PAResponse(
            case=case, source=source, raw=text[:200_000], is_malformed=True, errors={"payload": str(exc)}
        )
        save_with_history(response, actor=actor, reason="Malformed payer response kept (case unchanged)")
        return response
    response = PAResponse(
        case=case,
        source=source,
        raw=text[:200_000],
        decision=parsed.decision,
        authorization_number=parsed.authorization_number,
        effective_date=parsed.effective_date,
        expiration_date=parsed.expiration_date,
        reasons=parsed.reasons[:50],
        questions=parsed.questions,
    )
    return _store_and_apply(case, response, parsed, actor=actor)


def _store_and_apply(
    case: PACase, response: PAResponse, parsed: adapters.ParsedResponse, *, actor: Actor
) -> PAResponse:
    save_with_history(response, actor=actor, reason=f"Payer response received ({parsed.decision})")
    try:
        with transaction.atomic():
            _apply(case.pk, parsed, response, actor=actor)
    except DomainError as exc:
        response.errors = {"case": str(exc)}
        save_with_history(response, actor=actor, reason="Response not applied", update_fields=["errors"])
        raise
    return response


def _notice(case: PACase, text: str, *, actor: Actor) -> None:
    case.attention = text[:200]
    save_with_history(
        case, actor=actor, reason=f"Pharmacist queue notified: {text}"[:500], update_fields=["attention"]
    )


PATIENT_TEXT = {
    Decision.APPROVED: "Hi {name}, good news: your insurance approved coverage for {drug}. We will fill it now.",
    Decision.DENIED: "Hi {name}, your insurance did not approve {drug} yet. Your pharmacist is working on it with "
    "your prescriber.",
}


def _apply(case_id: int, parsed: adapters.ParsedResponse, response: PAResponse, *, actor: Actor) -> None:
    case = _locked(case_id)
    decision = parsed.decision
    target = {
        Decision.APPROVED: S.APPROVED,
        Decision.DENIED: S.DENIED,
        Decision.PENDED: S.PENDED,
        Decision.CLOSED: S.CLOSED,
    }[decision]
    if parsed.payer_case_id and not case.payer_case_id:
        case.payer_case_id = parsed.payer_case_id[:64]
    now = timezone.now()
    fields: list[str] = ["payer_case_id"]
    if decision == Decision.APPROVED:
        case.authorization_number = parsed.authorization_number
        case.effective_date, case.expiration_date = parsed.effective_date, parsed.expiration_date
        case.decided_at = now
        fields += ["authorization_number", "effective_date", "expiration_date", "decided_at"]
        note = (f"Approved: authorization {parsed.authorization_number}, "
                f"{parsed.effective_date} to {parsed.expiration_date}")
    elif decision == Decision.DENIED:
        case.denial_reasons, case.decided_at = parsed.reasons, now
        rx = Prescription.objects.select_related("drug", "patient", "prescriber", "pharmacy").get(
            pk=case.prescription_id
        )
        case.appeal_letter = conf.drafter().appeal(
            facts=_facts(case, rx, case.is_expedited),
            evidence=case.evidence,
            criteria=case.criteria_result,
            denial_reasons=parsed.reasons,
        )
        fields += ["denial_reasons", "decided_at", "appeal_letter"]
        note = f"Denied: {'; '.join(parsed.reasons)[:120]} — appeal drafted"
    elif decision == Decision.PENDED:
        case.questions = parsed.questions
        case.answers = {q["id"]: _suggest_answer(q, case) for q in parsed.questions}
        fields += ["questions", "answers"]
        note = (
            f"Pended: {len(parsed.questions)} question(s) from the payer"
            if parsed.questions
            else "Pended by the payer"
        )
    else:
        case.decided_at = now
        fields += ["decided_at"]
        note = f"Closed by the payer{': ' + '; '.join(parsed.reasons) if parsed.reasons else ''}"
    case.attention = note[:200]
    fields.append("attention")
    if case.status == S.PENDED and target == S.PENDED:  # InProcess update while already pended
        save_with_history(case, actor=actor, reason=note, update_fields=fields)
    else:
        _move(case, target, actor=actor, reason=f"Payer response {response.pk}: {note}", fields=tuple(fields))
    response.applied = True
    save_with_history(response, actor=actor, reason="Applied to the case", update_fields=["applied"])
    record_event(
        kind=f"pa.{decision}",
        actor=actor,
        subject=case,
        patient_id=case.patient_id,
        summary=note[:200],
        data={"response": response.pk, "authorization_number": case.authorization_number},
    )
    text = PATIENT_TEXT.get(decision)
    if text:
        patient = case.patient
        patient_message_enqueue(
            patient=patient,
            event_key=f"pa-{decision}:{case.pk}:{response.pk}",
            text=text.format(name=patient.contact_name, drug=case.drug.name),
            related=case,
        )


def _suggest_answer(question: dict, case: PACase) -> str:
    """Pre-fill an answer from the case's fields when the question names one (a person checks)."""
    text = question.get("text", "").lower()
    f = case.fields or {}
    for words, key in (
        (("diagnos", "icd"), "diagnosis_codes"),
        (("tried", "prior", "step"), "prior_therapies"),
        (("quantity",), "quantity"),
        (("npi",), "prescriber_npi"),
    ):
        if any(w in text for w in words) and f.get(key):
            return f[key]
    return ""


def on_submission_delivered(message) -> None:
    """Outbox hook: a payer that answers our POST synchronously (PAS ``$submit`` returns a
    ClaimResponse Bundle; an ePA endpoint may return the PAInitiationResponse) — read it."""
    if message.related_model != "priorauth.pacase" or not message.response:
        return
    body = message.response.strip()
    looks_like_answer = (
        ("ClaimResponse" in body)
        if body.startswith("{")
        else (body.startswith("<") and "Response" in body and "<Message" in body)
    )
    if not looks_like_answer:
        return
    case = PACase.objects.filter(pk=int(message.related_id)).first()
    if case is None or case.status not in (S.SUBMITTED, S.APPEALED, S.PENDED):
        return
    try:
        pa_response_ingest(case_id=case.pk, text=body, source=ResponseSource.DELIVERY)
    except DomainError:
        pass  # kept on the response row with its error


# --- schedules: polling, expiry and renewal ------------------------------------------------------


def pa_poll_open(*, limit: int = 200) -> dict:
    """Ask each payer with a status URL about cases awaiting it (GET status_url?case=…)."""
    counts = {"polled": 0, "answers": 0, "errors": 0}
    cases = (
        PACase.objects.filter(status__in=[*AWAITING_PAYER, S.PENDED])
        .select_related("payer")
        .order_by("decision_due_at")[:limit]
    )
    for case in cases:
        endpoint = conf.payer_endpoint(case.payer.endpoint_key if case.payer else "")
        url = endpoint.get("status_url")
        if not url:
            continue
        last = case.submissions.order_by("-id").first()
        query = urllib.parse.urlencode(
            {
                "case": case.payer_case_id or "",
                "reference": f"RXHUB-PA-{case.pk}",
                "message_id": last.message_id if last else "",
            }
        )
        headers = {"Accept": "application/fhir+json, application/xml"}
        token = os.environ.get(endpoint.get("token_env") or "", "") if endpoint.get("token_env") else ""
        if token:
            headers["Authorization"] = f"Bearer {token}"
        counts["polled"] += 1
        try:
            request = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}{query}", headers=headers)
            with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 (configured endpoint)
                body = answer.read(2_000_000).decode("utf-8", "replace").strip()
        except (urllib.error.URLError, OSError):
            counts["errors"] += 1
            continue
        if not body:
            continue  # nothing new
        try:
            response = pa_response_ingest(case_id=case.pk, text=body, source=ResponseSource.POLL)
        except DomainError:
            counts["errors"] += 1
            continue
        counts["answers"] += 0 if response.is_malformed else 1
        counts["errors"] += 1 if response.is_malformed else 0
    return counts


def pa_expiry_sweep(*, today: date | None = None) -> dict:
    """Approved cases past their expiration become expired; those expiring within the window
    (default 30 days) get a renewal case opened once."""
    today = today or timezone.localdate()
    window = timedelta(days=conf.renewal_window_days())
    counts = {"expired": 0, "renewals": 0, "skipped": 0}
    for case_id in list(
        PACase.objects.filter(status=S.APPROVED, expiration_date__lt=today).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            case = _locked(case_id)
            if case.status == S.APPROVED:
                _move(
                    case,
                    S.EXPIRED,
                    actor=STATUS_ACTOR,
                    reason=f"Authorization expired on {case.expiration_date}",
                )
                counts["expired"] += 1
    due = (
        PACase.objects.filter(
            status__in=[S.APPROVED, S.EXPIRED],
            expiration_date__lte=today + window,
            expiration_date__gte=today - window,
        )
        .exclude(renewals__isnull=False)
        .values_list("pk", "prescription_id")
    )
    for case_id, rx_id in list(due):
        if PACase.objects.filter(prescription_id=rx_id, status__in=OPEN_STATUSES).exists():
            counts["skipped"] += 1
            continue
        case = PACase.objects.get(pk=case_id)
        try:
            pa_case_open(
                prescription_id=rx_id,
                actor=STATUS_ACTOR,
                trigger=Trigger.RENEWAL,
                renewal_of=case,
                bin=case.payer.bin if case.payer else "",
                pcn=case.payer.pcn if case.payer else "",
                today=today,
            )
        except DomainError:
            counts["skipped"] += 1
            continue
        counts["renewals"] += 1
    return counts
