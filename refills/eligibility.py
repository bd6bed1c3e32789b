"""Refill and renewal eligibility: may a request of this kind be opened for this prescription today?

Pure: plain frozen dataclasses in, an ``EligibilityResult`` with every reason out; no Django, no
ORM, no settings (services build ``EligibilityPolicy`` from ``settings.RXHUB``).

Terms
- A *refill* dispenses a refill the prescriber already authorized; a *renewal* asks the prescriber
  for a new authorization (NCPDP SCRIPT RxRenewalRequest).
- ``kind_required`` is "renewal" when the prescription cannot be refilled any more: status expired
  or completed, no refills remaining, expired, expiring before the supply runs out with no chance
  to refill in time, Schedule II, Schedule III/IV past 6 months or past 5 refills. These
  *renewal triggers* block a refill request and are informational (non-blocking) on a renewal.

Blocking vs warning (our choices)
- Always blocking: ``not_active`` for on hold / discontinued / any status other than active,
  expired and completed (those block a refill); ``duplicate_open_request`` (DESIGN: a second open request is refused);
  ``allergy_conflict`` (an active allergy the one allergy rule matches; a pharmacist may override it
  with a reason, a protocol never). ``too_soon`` is overridable the same way (vacation supply).
- Blocking for a refill, warning for a renewal: the renewal triggers above; ``too_soon`` (the
  prescriber may authorize early, the pharmacy still dispenses on the eligible date);
  ``vcpr_exam_overdue`` (a refill needs a valid VCPR; a renewal goes to the veterinarian, who
  decides — usually "needs appointment", SCRIPT denial AM).
- Warnings: ``no_coverage`` (cash pay possible), ``no_contact_method``, ``no_fill_history`` (the
  next dispense is the original fill; too-soon and run-out cannot be computed), ``no_consent``
  (the patient is not messaged; blocking when ``EligibilityPolicy.consent_required``), and
  ``expires_before_run_out`` when a refill can still be dispensed before the expiration date
  (the request is still a renewal: issue 4 asks for one whenever expiry precedes run-out).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from pharmacy.rules.controlled import (
    CFR_1306_12,
    CFR_1306_22,
    MAX_REFILLS_III_IV,
    SCHEDULE_II,
    refill_deadline,
)
from pharmacy.rules.controlled import SCHEDULES_III_IV as CONTROLLED_III_IV
from pharmacy.rules.supply import (
    FillRecord,
    add_months,
    days_supply_used_share,
    earliest_refill_date,
    run_out_date,
)

Kind = Literal["refill", "renewal"]
REFILL: Kind = "refill"
RENEWAL: Kind = "renewal"

# Reason codes: stable strings, used by the API and stored on requests.
NOT_ACTIVE = "not_active"
NO_REFILLS_REMAINING = "no_refills_remaining"
EXPIRED = "expired"
EXPIRES_BEFORE_RUN_OUT = "expires_before_run_out"
SCHEDULE_II_NO_REFILLS = "schedule_ii_no_refills"
SCHEDULE_III_IV_SIX_MONTHS = "schedule_iii_iv_six_months"
SCHEDULE_III_IV_MAX_REFILLS = "schedule_iii_iv_max_refills"
TOO_SOON = "too_soon"
DUPLICATE_OPEN_REQUEST = "duplicate_open_request"
NO_CONSENT = "no_consent"
NO_CONTACT_METHOD = "no_contact_method"
NO_COVERAGE = "no_coverage"
VCPR_EXAM_OVERDUE = "vcpr_exam_overdue"
NO_FILL_HISTORY = "no_fill_history"
ALLERGY_CONFLICT = "allergy_conflict"

REASON_CODES: tuple[str, ...] = (
    NOT_ACTIVE, NO_REFILLS_REMAINING, EXPIRED, EXPIRES_BEFORE_RUN_OUT, SCHEDULE_II_NO_REFILLS,
    SCHEDULE_III_IV_SIX_MONTHS, SCHEDULE_III_IV_MAX_REFILLS, TOO_SOON, DUPLICATE_OPEN_REQUEST,
    NO_CONSENT, NO_CONTACT_METHOD, NO_COVERAGE, VCPR_EXAM_OVERDUE, NO_FILL_HISTORY, ALLERGY_CONFLICT,
)
# Blocking findings a pharmacist (a person, with a reason) may override — never a protocol rule
# (issue 13): an allergy conflict, and a refill too soon (e.g. a vacation supply).
OVERRIDABLE_CODES = frozenset({ALLERGY_CONFLICT, TOO_SOON})

# Citations (kept short; shown beside each reason). The DEA ones live with the limits in
# pharmacy/rules/controlled.py.
AVMA_VCPR = "AVMA VCPR (examination within 12 months in most states)"
TOO_SOON_CITATION = "Payer refill-too-soon edit (NCPDP reject 79); default 75 % of days supply, configurable"
EXPIRY_DEFAULT_CITATION = "State law; default 365 days from the date written, configurable"

# Statuses after which the only way forward is a renewal (the prescriber decides); every other
# non-active status (on hold, discontinued, …) blocks both kinds. A completed prescription blocks
# a refill; its renewal is the prescriber's to decide.
RENEWABLE_STATUSES = frozenset({"expired", "completed"})


@dataclass(frozen=True)
class PrescriptionFacts:
    status: str  # active | on_hold | expired | discontinued | completed
    dea_schedule: str  # none | 2 | 3 | 4 | 5
    refills_authorized: int
    refills_remaining: int
    written_date: date
    expiration_date: date | None  # last day the prescription may be filled; None = policy default
    days_supply: int
    last_fill: FillRecord | None = None
    fills: tuple[FillRecord, ...] = ()
    is_veterinary: bool = False

    @property
    def all_fills(self) -> tuple[FillRecord, ...]:
        """Every fill, ``last_fill`` included even when the caller left it out of ``fills``."""
        if self.last_fill is not None and self.last_fill not in self.fills:
            return (*self.fills, self.last_fill)
        return self.fills

    @property
    def latest_fill(self) -> FillRecord | None:
        if self.last_fill is not None:
            return self.last_fill
        return max(self.fills, key=lambda f: f.fill_date) if self.fills else None


@dataclass(frozen=True)
class PatientFacts:
    consent_to_messages: bool = True
    contact_preference: str = "sms"  # sms | email | phone | none
    has_phone: bool = True
    has_email: bool = False
    has_coverage: bool = True
    last_visit_date: date | None = None  # last office visit / veterinary examination
    species: str = "human"


@dataclass(frozen=True)
class EligibilityPolicy:
    # Share of the last fill's days supply that must be used before a refill (STANDARDS: default 75 %).
    too_soon_share: Decimal = Decimal("0.75")
    # Expiry when the prescription carries none; no federal limit outside Schedules III/IV (STANDARDS).
    non_controlled_expiry_days: int = 365
    # AVMA VCPR: an examination within 12 months (most states).
    vet_exam_months: int = 12
    # When True, ``no_consent`` blocks (e.g. for proactive outreach); default: a warning.
    consent_required: bool = False


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    blocking: bool
    citation: str
    overridable: bool = False  # a pharmacist may override it with a reason (OVERRIDABLE_CODES)


@dataclass(frozen=True)
class EligibilityResult:
    eligible: bool
    kind: Kind  # the kind that was checked
    kind_required: Kind
    reasons: tuple[Reason, ...]
    run_out_date: date | None = None
    earliest_refill_date: date | None = None
    valid_until: date | None = None  # last day the prescription may be filled (expiry / 6-month limit)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def blocking_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.blocking)

    @property
    def warnings(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if not r.blocking)

    def has(self, code: str) -> bool:
        return code in self.codes

    @property
    def converts_to_renewal(self) -> bool:
        """A refill request blocked only by renewal triggers: reopen it as a renewal."""
        return (
            self.kind == REFILL
            and self.kind_required == RENEWAL
            and all(r.code in _RENEWAL_TRIGGER_CODES for r in self.blocking_reasons)
        )


_RENEWAL_TRIGGER_CODES = frozenset({
    NOT_ACTIVE, NO_REFILLS_REMAINING, EXPIRED, EXPIRES_BEFORE_RUN_OUT, SCHEDULE_II_NO_REFILLS,
    SCHEDULE_III_IV_SIX_MONTHS, SCHEDULE_III_IV_MAX_REFILLS,
})


@dataclass(frozen=True)
class _Finding:
    code: str
    message: str
    citation: str
    blocks_refill: bool
    blocks_renewal: bool
    renewal_trigger: bool = False

    def reason(self, kind: Kind) -> Reason:
        blocking = self.blocks_refill if kind == REFILL else self.blocks_renewal
        return Reason(self.code, self.message, blocking, self.citation,
                      overridable=blocking and self.code in OVERRIDABLE_CODES)


@dataclass(frozen=True)
class _RxState:
    findings: tuple[_Finding, ...]
    run_out: date | None
    earliest: date | None
    valid_until: date
    kind_required: Kind


def _pct(share: Decimal) -> str:
    return f"{(share * 100).normalize():f} %"


def valid_until(prescription: PrescriptionFacts, policy: EligibilityPolicy = EligibilityPolicy()) -> date:
    """Last day the prescription may be filled: its expiration date, or the policy default, and for
    Schedules III/IV never later than 6 months after the date issued (21 CFR 1306.22(a))."""
    rx = prescription
    if rx.expiration_date is not None:
        day = rx.expiration_date
    elif rx.dea_schedule in CONTROLLED_III_IV:
        day = refill_deadline(rx.written_date)  # 21 CFR 1306.22(a)
    else:
        # No federal expiry (Schedule II, V, non-controlled): configurable default (STANDARDS).
        day = rx.written_date + timedelta(days=policy.non_controlled_expiry_days)
    if rx.dea_schedule in CONTROLLED_III_IV:
        day = min(day, refill_deadline(rx.written_date))  # 21 CFR 1306.22(a)
    return day


def _prescription_state(rx: PrescriptionFacts, today: date, policy: EligibilityPolicy) -> _RxState:
    """Findings that depend on the prescription alone (shared with the detection engine)."""
    found: list[_Finding] = []
    fills = rx.all_fills
    last = rx.latest_fill
    run_out = run_out_date(fills)
    earliest = earliest_refill_date(last, policy.too_soon_share) if last else None
    until = valid_until(rx, policy)
    schedule_ii = rx.dea_schedule == SCHEDULE_II
    iii_iv = rx.dea_schedule in CONTROLLED_III_IV

    if rx.status != "active":
        renewable = rx.status in RENEWABLE_STATUSES
        outcome = "a renewal is needed" if renewable else "it cannot be refilled or renewed"
        found.append(_Finding(
            NOT_ACTIVE,
            f"The prescription is {rx.status.replace('_', ' ')}; {outcome}.",
            "Prescription status",
            blocks_refill=True, blocks_renewal=not renewable, renewal_trigger=renewable,
        ))

    if schedule_ii:
        # 21 CFR 1306.12(a): the refilling of a Schedule II prescription is prohibited.
        found.append(_Finding(
            SCHEDULE_II_NO_REFILLS,
            "Schedule II prescriptions cannot be refilled; the prescriber must issue a new prescription.",
            CFR_1306_12, blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
        ))
    elif rx.refills_remaining <= 0:
        # Not repeated for Schedule II, where it is implied by schedule_ii_no_refills.
        found.append(_Finding(
            NO_REFILLS_REMAINING,
            f"No refills remaining (0 of {rx.refills_authorized} authorized); a renewal is needed.",
            "Prescription: refills authorized by the prescriber",
            blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
        ))

    if iii_iv:
        limit = refill_deadline(rx.written_date)
        if today > limit:
            # 21 CFR 1306.22(a): no refill more than 6 months after the date issued.
            found.append(_Finding(
                SCHEDULE_III_IV_SIX_MONTHS,
                f"Schedule {_roman(rx.dea_schedule)}: no refills after {limit.isoformat()}, "
                f"6 months after the date issued ({rx.written_date.isoformat()}).",
                CFR_1306_22, blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
            ))
        refills_dispensed = max(len(fills) - 1, 0)  # each later fill counts as a refill (21 CFR 1306.23)
        if rx.refills_authorized > MAX_REFILLS_III_IV or (
            refills_dispensed >= MAX_REFILLS_III_IV and rx.refills_remaining > 0
        ):
            # 21 CFR 1306.22(a): at most 5 refills of a Schedule III or IV prescription.
            found.append(_Finding(
                SCHEDULE_III_IV_MAX_REFILLS,
                f"Schedule {_roman(rx.dea_schedule)}: at most {MAX_REFILLS_III_IV} refills "
                f"({rx.refills_authorized} authorized, {refills_dispensed} dispensed).",
                CFR_1306_22, blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
            ))

    if today > until and not (iii_iv and rx.expiration_date is None):
        # (Schedules III/IV without an own expiration date: reported as schedule_iii_iv_six_months.)
        found.append(_Finding(
            EXPIRED,
            f"The prescription expired on {until.isoformat()}; a renewal is needed.",
            "Prescription expiration date" if rx.expiration_date else EXPIRY_DEFAULT_CITATION,
            blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
        ))
    elif (
        today <= until and run_out is not None and until < run_out
        and not schedule_ii and rx.refills_remaining > 0 and rx.status == "active"
    ):
        # Valid today but not on the run-out day: a refill is possible only until ``until``.
        citation = CFR_1306_22 if iii_iv else (
            "Prescription expiration date" if rx.expiration_date else EXPIRY_DEFAULT_CITATION
        )
        if earliest is not None and earliest > until:
            found.append(_Finding(
                EXPIRES_BEFORE_RUN_OUT,
                f"The prescription expires on {until.isoformat()}, before a refill is due "
                f"({earliest.isoformat()}) and before the supply runs out ({run_out.isoformat()}); "
                "a renewal is needed.",
                citation, blocks_refill=True, blocks_renewal=False, renewal_trigger=True,
            ))
        else:
            found.append(_Finding(
                EXPIRES_BEFORE_RUN_OUT,
                f"The prescription expires on {until.isoformat()}, before the supply runs out "
                f"({run_out.isoformat()}); a renewal is requested so therapy continues "
                f"(a refill may still be dispensed until {until.isoformat()}).",
                citation, blocks_refill=False, blocks_renewal=False, renewal_trigger=True,
            ))

    kind_required: Kind = RENEWAL if any(f.renewal_trigger for f in found) else REFILL
    return _RxState(tuple(found), run_out, earliest, until, kind_required)


def _roman(schedule: str) -> str:
    return {"2": "II", "3": "III", "4": "IV", "5": "V"}.get(schedule, schedule)


def _contact_finding(patient: PatientFacts) -> _Finding | None:
    pref = patient.contact_preference
    usable = {"sms": patient.has_phone, "phone": patient.has_phone, "email": patient.has_email}
    if pref in usable and usable[pref]:
        return None
    others = [channel for channel, ok in (("phone", patient.has_phone), ("e-mail", patient.has_email)) if ok]
    if pref == "none" or pref not in usable:
        problem = "The patient asked not to be contacted"
    else:
        needs = "e-mail address" if pref == "email" else "phone number"
        problem = f"The preferred contact method is {pref} but no {needs} is on file"
    hint = f" ({' and '.join(others)} on file)" if others and pref in usable else ""
    return _Finding(
        NO_CONTACT_METHOD, f"{problem}{hint}; the patient will not be notified automatically.",
        "Patient contact preference", blocks_refill=False, blocks_renewal=False,
    )


def check_eligibility(
    *,
    prescription: PrescriptionFacts,
    patient: PatientFacts,
    has_open_request: bool,
    today: date,
    policy: EligibilityPolicy = EligibilityPolicy(),
    kind: Kind = REFILL,
    allergy_conflicts: tuple[str, ...] = (),
) -> EligibilityResult:
    """Every reason for and against opening a request of ``kind`` today.

    ``eligible`` is True when no reason blocks; ``kind_required`` says which kind the
    prescription needs (see the module docstring for blocking vs warning).
    """
    if kind not in (REFILL, RENEWAL):
        raise ValueError(f"kind must be 'refill' or 'renewal', got {kind!r}")
    rx = prescription
    state = _prescription_state(rx, today, policy)
    found = list(state.findings)
    last = rx.latest_fill

    if last is None:
        found.append(_Finding(
            NO_FILL_HISTORY,
            "No fill on record: the next dispense is the original fill; too-soon and run-out "
            "cannot be checked.",
            "Fill history", blocks_refill=False, blocks_renewal=False,
        ))
    elif state.earliest is not None and today < state.earliest:
        share = days_supply_used_share(last, today)
        used = max((today - last.fill_date).days, 0)
        found.append(_Finding(
            TOO_SOON,
            f"Too soon: {used} of {last.days_supply} days' supply used ({_pct(share)}, "
            f"{_pct(policy.too_soon_share)} needed); eligible on {state.earliest.isoformat()}.",
            TOO_SOON_CITATION, blocks_refill=True, blocks_renewal=False,
        ))

    if allergy_conflicts:
        # docs/standards.md "Allergy cross-sensitivity" (one rule, pharmacy/rules): a person decides.
        found.append(_Finding(
            ALLERGY_CONFLICT,
            "Active allergy conflict: " + "; ".join(allergy_conflicts) + ".",
            "Patient allergy list; cross-sensitivity per docs/standards.md (AAAAI/ACAAI 2022, Strom 2003)",
            blocks_refill=True, blocks_renewal=True,
        ))

    if has_open_request:
        # DESIGN: a second open request for the same prescription is refused.
        found.append(_Finding(
            DUPLICATE_OPEN_REQUEST,
            "A refill or renewal request for this prescription is already open.",
            "One open request per prescription", blocks_refill=True, blocks_renewal=True,
        ))

    is_animal = rx.is_veterinary or patient.species not in ("human", "")
    if is_animal:
        exam_due_after = add_months(today, -policy.vet_exam_months)
        if patient.last_visit_date is None or patient.last_visit_date < exam_due_after:
            seen = patient.last_visit_date.isoformat() if patient.last_visit_date else "never"
            # AVMA VCPR: the veterinarian has examined the animal recently (12 months in most states).
            found.append(_Finding(
                VCPR_EXAM_OVERDUE,
                f"No veterinary examination within {policy.vet_exam_months} months (last: {seen}); "
                "a valid veterinarian–client–patient relationship is needed before a refill.",
                AVMA_VCPR, blocks_refill=True, blocks_renewal=False,
            ))

    if not patient.consent_to_messages:
        found.append(_Finding(
            NO_CONSENT,
            "The patient has not consented to messages; they will not be notified automatically.",
            "Patient consent to messages (practice policy)",
            blocks_refill=policy.consent_required, blocks_renewal=policy.consent_required,
        ))
    contact = _contact_finding(patient)
    if contact is not None:
        found.append(contact)

    if not patient.has_coverage:
        found.append(_Finding(
            NO_COVERAGE,
            "No active coverage on file; the fill would be cash pay unless coverage is added.",
            "Coverage on file", blocks_refill=False, blocks_renewal=False,
        ))

    reasons = tuple(f.reason(kind) for f in found)
    return EligibilityResult(
        eligible=not any(r.blocking for r in reasons),
        kind=kind,
        kind_required=state.kind_required,
        reasons=reasons,
        run_out_date=state.run_out,
        earliest_refill_date=state.earliest,
        valid_until=state.valid_until,
    )


def compute_run_out_and_kind(
    *,
    prescription: PrescriptionFacts,
    today: date,
    lookahead_days: int = 7,
    policy: EligibilityPolicy = EligibilityPolicy(),
    max_days_overdue: int | None = 60,
) -> tuple[date, Kind] | None:
    """For the detection engine: (run-out date, kind of request) when the supply runs out within
    ``lookahead_days`` of ``today``, else None.

    None as well when there is no fill history, when the prescription is on hold, discontinued or
    in another state that cannot lead to a request, and when the supply ran out more than
    ``max_days_overdue`` days ago (therapy presumed stopped; None disables that cut-off).
    """
    rx = prescription
    if rx.status != "active" and rx.status not in RENEWABLE_STATUSES:
        return None
    state = _prescription_state(rx, today, policy)
    if state.run_out is None or state.run_out > today + timedelta(days=lookahead_days):
        return None
    if max_days_overdue is not None and state.run_out < today - timedelta(days=max_days_overdue):
        return None
    return state.run_out, state.kind_required
