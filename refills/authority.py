"""Map requests, users and agreements to the pure rule module ``pharmacy.rules.authority`` and
apply its answers: every approval path (queue, bulk, API, protocol, link) goes through
``authority_check`` inside ``refill_request_approve`` / ``refill_request_evaluate``."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError

from pharmacy.actors import SystemActor
from pharmacy.errors import DomainError
from pharmacy.models import CollaborativePracticeAgreement, Prescription, default_expiration
from pharmacy.roles import ADMIN, PHARMACIST, PRESCRIBER, TECHNICIAN, user_roles
from pharmacy.rules import authority as rules

from .models import RefillRequest

LINK_ACTOR_NAME = "system:prescriber-link"
PROTOCOL_ACTOR_NAME = "system:refill-protocol"
NO_CHANGE = rules.Change()


def limit_policy() -> rules.LimitPolicy:
    return rules.LimitPolicy(max_authorization_days=int(settings.RXHUB.get("MAX_AUTHORIZATION_DAYS", 365)))


def agreement_facts(row: CollaborativePracticeAgreement) -> rules.AgreementFacts:
    return rules.AgreementFacts(
        id=row.pk, prescriber_id=row.prescriber_id, effective_date=row.effective_date, end_date=row.end_date,
        pharmacist_ids=frozenset(u.pk for u in row.pharmacists.all()),
        pharmacist_groups=frozenset(g.name for g in row.pharmacist_groups.all()),
        drug_classes=tuple(row.drug_classes or ()), drug_names=tuple(row.drug_names or ()),
        max_days_supply=row.max_days_supply, document_reference=row.document_reference, is_active=row.is_active,
        label=row.title)


def agreements_for(prescriber_id: int | None) -> tuple[rules.AgreementFacts, ...]:
    if prescriber_id is None:
        return ()
    rows = (CollaborativePracticeAgreement.objects.filter(prescriber_id=prescriber_id, is_active=True)
            .prefetch_related("pharmacists", "pharmacist_groups").order_by("effective_date", "pk"))
    return tuple(agreement_facts(row) for row in rows)


def _request_prescriber(req: RefillRequest, rx: Prescription):
    return req.prescriber if req.prescriber_id else rx.prescriber


def decider_for(actor, req: RefillRequest, rx: Prescription, *, agreement_id: int | None = None) -> rules.Decider:
    """Who is deciding, in the rule module's terms."""
    prescriber = _request_prescriber(req, rx)
    if isinstance(actor, SystemActor):
        if actor.name == LINK_ACTOR_NAME:  # the signed link is the prescriber's credential
            return rules.Decider("prescriber", is_request_prescriber=True)
        if actor.name == PROTOCOL_ACTOR_NAME:
            return rules.Decider("protocol", agreement_id=agreement_id)
        return rules.Decider("other")
    roles = user_roles(actor)
    groups = frozenset(g.name for g in actor.groups.all())
    if PRESCRIBER in roles and prescriber is not None and prescriber.user_id == actor.pk:
        return rules.Decider("prescriber", user_id=actor.pk, groups=groups, is_request_prescriber=True)
    if roles & {PHARMACIST, ADMIN}:
        return rules.Decider("pharmacist", user_id=actor.pk, groups=groups)
    if PRESCRIBER in roles:
        return rules.Decider("prescriber", user_id=actor.pk, groups=groups)
    if TECHNICIAN in roles:
        return rules.Decider("technician", user_id=actor.pk, groups=groups)
    return rules.Decider("other", user_id=actor.pk, groups=groups)


def request_facts(req: RefillRequest, rx: Prescription, change: rules.Change = NO_CHANGE) -> rules.RequestFacts:
    return rules.RequestFacts(
        kind=req.kind, dea_schedule=rx.dea_schedule, prescriber_id=_request_prescriber(req, rx).pk,
        drug_name=rx.drug.name, drug_class=rx.drug.therapeutic_class, quantity=rx.quantity,
        days_supply=rx.days_supply, refills_authorized=rx.refills_authorized, change=change)


def change_of(quantity=None, days_supply=None, refills=None) -> rules.Change:
    return rules.Change(quantity=Decimal(str(quantity)) if quantity is not None else None,
                        days_supply=int(days_supply) if days_supply is not None else None,
                        refills=int(refills) if refills is not None else None)


def authority_for(req: RefillRequest, rx: Prescription, actor, change: rules.Change = NO_CHANGE, *,
                  agreement_id: int | None = None, today: date) -> rules.Authority:
    facts = request_facts(req, rx, change)
    return rules.authorize(request=facts, decider=decider_for(actor, req, rx, agreement_id=agreement_id),
                           agreements=agreements_for(facts.prescriber_id), today=today)


def authority_check(req: RefillRequest, rx: Prescription, actor, change: rules.Change, *, today: date,
                    agreement_id: int | None = None) -> rules.Authority:
    """The authority to approve, or a DomainError naming why not (API 409 with its code)."""
    answer = authority_for(req, rx, actor, change, agreement_id=agreement_id, today=today)
    if not answer.allowed:
        raise DomainError(f"{answer.message} ({answer.citation})", code=answer.code)
    return answer


_PER_DAY = {"daily": 1, "qd": 1, "qam": 1, "qpm": 1, "qhs": 1, "hs": 1, "bid": 2, "tid": 3, "qid": 4,
            "weekly": Decimal(1) / 7, "qod": Decimal(1) / 2}


def units_per_day(sig: str) -> Decimal | None:
    """Doses a day from a sig that reads plainly ("1 tablet twice daily"); None for PRN, tapers or
    anything unclear (then no quantity warning is given)."""
    from pharmacy.interop.sig import parse_directions

    parsed = parse_directions(sig or "")
    if parsed.as_needed or parsed.taper or not parsed.dose or not parsed.frequency:
        return None
    # "1", "1.5", "1/2" tablet; a range ("1-2", "1 to 2", "1 or 2") is unclear: no warning.
    number = re.match(r"\s*(\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?(\s*(?:-|to\b|or\b)\s*\d)?", parsed.dose)
    if number is None or number.group(3) or number.group(2) == "0":
        return None
    dose = Decimal(number.group(1)) / (Decimal(number.group(2)) if number.group(2) else 1)
    freq = parsed.frequency.lower()
    per_day = _PER_DAY.get(freq)
    hours = re.fullmatch(r"q(\d+)h", freq)
    if per_day is None and hours:
        per_day = Decimal(24) / int(hours.group(1))
    if per_day is None:
        return None
    return dose * Decimal(str(per_day))


def authorization_values(req: RefillRequest, rx: Prescription, change: rules.Change) -> tuple[Decimal, int, int]:
    """(quantity, days supply, refills) the approval would send."""
    quantity = change.quantity if change.quantity is not None else rx.quantity
    days = change.days_supply if change.days_supply is not None else rx.days_supply
    if change.refills is not None:
        refills = change.refills
    elif req.kind == "renewal":
        refills = req.pharmacy_requested_refills if req.pharmacy_requested_refills is not None \
            else rx.refills_authorized
    else:
        refills = rx.refills_authorized
    return quantity, days, refills


def quantity_warnings(req: RefillRequest, rx: Prescription, change: rules.Change = NO_CHANGE) -> list[str]:
    """The sig / quantity mismatch warning for what the approval would send (empty when consistent
    or when the sig does not read plainly)."""
    quantity, days, _ = authorization_values(req, rx, change)
    warning = rules.sig_quantity_warning(quantity=quantity, days_supply=days, units_per_day=units_per_day(rx.sig))
    return [warning] if warning else []


def limits_check(req: RefillRequest, rx: Prescription, change: rules.Change, *, today: date,
                 renewal: bool) -> rules.ChangeCheck:
    """The limits on what is authorized; a ValidationError naming the limit and its source when broken."""
    quantity, days, refills = authorization_values(req, rx, change)
    if renewal:  # a new prescription: written today, expiring per policy
        expiration = default_expiration(today, rx.dea_schedule)
    else:
        expiration = rx.expiration_date or default_expiration(rx.written_date, rx.dea_schedule)
    result = rules.check_changes(
        dea_schedule=rx.dea_schedule, quantity=quantity, days_supply=days,
        refills=refills if (renewal or change.refills is not None) else None, today=today,
        expiration=expiration, policy=limit_policy(), units_per_day=units_per_day(rx.sig))
    if not result.ok:
        raise ValidationError(result.errors)
    return result


def offered_actions(req: RefillRequest, user, *, today: date) -> tuple[str, ...]:
    """Buttons a page shows this user for this request (an Approve is shown only when it would hold)."""
    rx = req.prescription
    decider = decider_for(user, req, rx)
    if decider.kind == "prescriber" and req.status != "awaiting_prescriber":
        return ()  # the prescriber answers once the pharmacist forwarded the request
    return rules.offered_actions(request=request_facts(req, rx), decider=decider,
                                 agreements=agreements_for(_request_prescriber(req, rx).pk), today=today)
