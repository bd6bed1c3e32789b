"""Opening a PA case, its evidence and criteria analysis, the drafted letter, edits, attachments,
cancelling, expediting and the review of automatic submissions."""
from __future__ import annotations

import json
from datetime import date

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, save_with_history
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.models import Coverage, Prescription
from pharmacy.roles import require_role

from .. import adapters, conf
from .. import evidence as ev
from ..choices import (
    OPEN_STATUSES,
    Adapter,
    AutoReview,
    Benefit,
    RolloutMode,
    Trigger,
)
from ..criteria import check_criteria, spec_from_dict
from ..drafting import TemplateDrafter
from ..models import (
    PAAttachment,
    PACase,
)
from ..rollout import auto_trace
from ._common import DECIDE_ROLES, EDITABLE, PREPARE_ROLES, ROLLOUT_ACTOR, S, _facts, _locked, _move, _notice, _user
from .payers import criteria_for, payer_for
from .submission import _enqueue, _submit

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024


def _coverage(rx: Prescription, bin: str = "", pcn: str = "") -> Coverage | None:
    coverages = list(Coverage.objects.filter(patient_id=rx.patient_id, is_active=True).order_by("priority"))
    if bin:
        exact = [c for c in coverages if c.bin == bin and (not pcn or c.pcn == pcn)]
        if exact:
            return exact[0]
    return coverages[0] if coverages else None


def _analyse(case: PACase, rx: Prescription, *, today: date, drafts: dict | None = None) -> dict:
    """Gather evidence, check criteria, draft (in memory; the caller saves). Returns
    ``{inputs: draft}`` for the draft made.

    ``drafts`` given (the caller holds locks): a draft made beforehand for the same inputs is used;
    otherwise the local template drafter drafts — a networked drafter is never called under a lock
    (docs/design.md "No network under a lock"). Without ``drafts`` the configured drafter runs."""
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
        return {}
    facts = _facts(case, rx, case.is_expedited)
    key = json.dumps([facts, case.evidence, case.criteria_result], sort_keys=True, default=str)
    if drafts is not None and key in drafts:
        draft = drafts[key]
    else:
        drafter = conf.drafter()
        if drafts is not None and drafter.uses_network:
            drafter = TemplateDrafter()  # the inputs changed since the draft was made: no network here
        draft = drafter.draft(facts=facts, evidence=case.evidence, criteria=case.criteria_result)
    case.system_letter, case.system_fields = draft.letter, draft.fields
    case.system_statements = [s.as_dict() for s in draft.statements] + [
        {"field": k, "sources": [x.strip() for x in v.split(",")]} for k, v in draft.field_sources.items()
    ]
    case.missing, case.drafter = draft.missing, draft.drafter
    return {key: draft}


def _draft_before_locking(build, *, today: date) -> dict:
    """With a networked drafter: build the case in memory (no lock, nothing saved) and draft it, so
    the HTTP call is made before any row is locked. ``{}`` with the local drafter."""
    if not conf.drafter().uses_network:
        return {}
    case, rx = build()
    return _analyse(case, rx, today=today)


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

    def build(*, lock: bool) -> tuple[PACase, Prescription]:
        rows = Prescription.objects.select_for_update(of=("self",)) if lock else Prescription.objects
        rx = rows.select_related("drug", "patient", "prescriber", "pharmacy").get(pk=prescription_id)
        if PACase.objects.filter(prescription=rx, status__in=OPEN_STATUSES).exists():
            raise DomainError("This prescription already has an open PA case.", code="duplicate_open_case")
        coverage = _coverage(rx, bin, pcn)
        payer = payer_for(bin=bin or (coverage.bin if coverage else ""), pcn=pcn or (coverage.pcn if coverage else ""))
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
        return case, rx

    drafts = _draft_before_locking(lambda: build(lock=False), today=today)
    try:
        with transaction.atomic():
            case, rx = build(lock=True)
            label = {
                Trigger.REJECT_75: f"claim {claim_reference} rejected 75",
                Trigger.RENEWAL: f"renewal of case {renewal_of.pk if renewal_of else ''} before expiry",
                Trigger.STAFF: "opened by staff",
            }[trigger]
            save_with_history(case, actor=actor, reason=f"Opened: {label}")
            _move(case, S.GATHERING, actor=actor, reason="Gathering evidence")
            _analyse(case, rx, today=today, drafts=drafts)
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


def pa_case_refresh(*, case_id: int, actor: Actor, today: date | None = None) -> PACase:
    """Gather evidence again (new labs, fills) and redraft; a person's edits are kept. A networked
    drafter drafts before the case is locked."""
    require_role(actor, *PREPARE_ROLES, action="refresh a PA case")
    today = today or timezone.localdate()

    def build() -> tuple[PACase, Prescription]:
        case = PACase.objects.filter(pk=case_id).first()
        if case is None:
            raise DomainError(f"PA case {case_id} does not exist.", code="not_found")
        return case, Prescription.objects.select_related("drug", "patient", "prescriber", "pharmacy").get(
            pk=case.prescription_id)

    drafts = _draft_before_locking(build, today=today)
    with transaction.atomic():
        case = _locked(case_id)
        if case.status not in EDITABLE:
            raise TransitionNotAllowed(model="PA case", current=case.status, target="refreshed")
        rx = Prescription.objects.select_related("drug", "patient", "prescriber", "pharmacy").get(
            pk=case.prescription_id
        )
        _analyse(case, rx, today=today, drafts=drafts)
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
