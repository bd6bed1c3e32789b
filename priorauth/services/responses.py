"""Payer responses (pushed, polled or typed in): validated, stored, then applied to the case."""
from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, save_with_history
from pharmacy.errors import DomainError
from pharmacy.messaging.notify import patient_message_enqueue
from pharmacy.models import Prescription

from .. import adapters, conf
from ..choices import (
    Decision,
    ResponseSource,
)
from ..models import (
    PACase,
    PAResponse,
)
from ._common import STATUS_ACTOR, S, _facts, _locked, _move


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
