"""Submitting a case to the payer (through the outbox), answering the payer's questions, appeals."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, save_with_history
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.messaging.outbox import outbox_enqueue
from pharmacy.roles import require_role

from .. import adapters, conf
from ..choices import (
    Adapter,
    ResponseSource,
    can_transition,
)
from ..deadlines import decision_due
from ..models import (
    PACase,
    PASubmission,
)
from ..rollout import agreement
from ._common import DECIDE_ROLES, S, _locked, _move, _user
from .responses import pa_response_ingest


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
