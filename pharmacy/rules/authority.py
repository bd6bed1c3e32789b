"""Who may authorize what, and the limits on what is authorized (one pure rule module).

Pure: plain frozen dataclasses in, an ``Authority`` / ``ChangeCheck`` with its reasons out; no
Django, no ORM, no settings. Every approval path — the queue page, bulk approve, the REST API, the
refill protocol (auto and assist) and the prescriber link — asks ``authorize`` before it records
an approval, and ``check_changes`` before it records a quantity, days supply or refills.

Facts (docs/standards.md "Who may authorize what", "Controlled substances and expiry"):
- A *refill* dispenses again under an existing prescription's authorized refills: dispensing work
  a pharmacist may release. A *renewal* — no refills left, expired, Schedule II, or a changed drug,
  strength, sig or a quantity / days supply beyond the original — is a **new prescription** and
  needs the prescriber's authorization.
- A pharmacist may authorize a renewal only under a recorded, current **collaborative practice
  agreement** that covers the prescriber and the drug and names the pharmacist (or their group);
  48 states and DC permit CPAs in some form (NASPA/NABP surveys, secondary). A protocol rule may
  do so only when it names such an agreement.
- **Controlled substances (Schedule II–V)**: an electronic prescription is valid only when created
  and signed in an EPCS-certified application with two-factor authentication (21 CFR 1311.100–
  1311.305). This system is not one: it never authorizes a controlled renewal, by anyone; the
  prescriber sends a new prescription from their own EPCS system. No agreement changes that.
  Schedule II: no refills (21 CFR 1306.12(a)). Schedules III–IV: at most 5 refills within 6 months
  of the date issued (21 CFR 1306.22(a)); a refill within those limits stays releasable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from . import controlled

Kind = Literal["refill", "renewal"]
DeciderKind = Literal["pharmacist", "prescriber", "protocol", "technician", "other"]

CONTROLLED = frozenset({"2", "3", "4", "5"})
# Refills a prescription of each schedule may carry (none listed: no federal limit), with the
# regulation — the limits themselves live once in pharmacy/rules/controlled.py.
SCHEDULE_REFILL_LIMITS: dict[str, tuple[int, str]] = {
    schedule: (limit, controlled.CFR_1306_12 if schedule == controlled.SCHEDULE_II else controlled.CFR_1306_22)
    for schedule, limit in controlled.MAX_REFILLS.items()
}
CFR_1311 = "21 CFR 1311.100–1311.305 (EPCS)"
CPA_SOURCE = "Collaborative practice agreement required (state pharmacy practice acts; NASPA/NABP surveys)"
PRESCRIBER_SOURCE = "A renewal is a new prescription: the prescriber authorizes it"
MAX_AUTHORIZATION_SOURCE = "Maximum authorization per renewal (RXHUB MAX_AUTHORIZATION_DAYS, default 365 days)"
EXPIRY_SOURCE = "Prescription expiration (state law; RXHUB NON_CONTROLLED_EXPIRY_DAYS, default 365 days)"

# Codes (stable: the API answers them, tests and pages key on them).
PRESCRIBER_AUTHORIZATION_REQUIRED = "prescriber_authorization_required"
EPCS_REQUIRED = "epcs_required"
NOT_A_CLINICIAN = "clinical_role_required"

# Actions a page may offer.
APPROVE = "approve"
APPROVE_WITH_CHANGES = "approve_with_changes"
FORWARD = "forward"
DENY = "deny"
NEW_PRESCRIPTION = "new_prescription"


def is_controlled(schedule: str) -> bool:
    return schedule in CONTROLLED


def roman(schedule: str) -> str:
    return {"2": "II", "3": "III", "4": "IV", "5": "V"}.get(schedule, schedule)


@dataclass(frozen=True)
class AgreementFacts:
    """A collaborative practice agreement as recorded (pharmacy.CollaborativePracticeAgreement)."""

    id: int
    prescriber_id: int
    effective_date: date
    end_date: date | None = None
    pharmacist_ids: frozenset[int] = frozenset()
    pharmacist_groups: frozenset[str] = frozenset()
    drug_classes: tuple[str, ...] = ()
    drug_names: tuple[str, ...] = ()  # generic names, whole words, case-insensitive
    max_days_supply: int = 0  # per renewal: days supply × (refills + 1); 0 = no limit of its own
    document_reference: str = ""
    is_active: bool = True
    label: str = ""

    def current_on(self, day: date) -> bool:
        return self.is_active and self.effective_date <= day and (self.end_date is None or day <= self.end_date)

    def covers_drug(self, drug_name: str, drug_class: str) -> bool:
        if drug_class and drug_class in self.drug_classes:
            return True
        words = set(_words(drug_name))
        return any(set(_words(name)) <= words for name in self.drug_names if name.strip())

    def names_pharmacist(self, user_id: int | None, groups: frozenset[str]) -> bool:
        return (user_id is not None and user_id in self.pharmacist_ids) or bool(groups & self.pharmacist_groups)

    def describe(self) -> str:
        ref = f", signed document {self.document_reference}" if self.document_reference else ""
        return f"collaborative practice agreement #{self.id}{' “' + self.label + '”' if self.label else ''}{ref}"


def _words(text: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() else " " for c in text or "").split() if w]


@dataclass(frozen=True)
class Decider:
    """Who is about to decide. ``is_request_prescriber``: the request's own prescriber (their
    signed link, or their login). ``agreement_id``: for a protocol rule, the agreement it names."""

    kind: DeciderKind
    user_id: int | None = None
    groups: frozenset[str] = frozenset()
    is_request_prescriber: bool = False
    agreement_id: int | None = None


@dataclass(frozen=True)
class Change:
    quantity: Decimal | None = None
    days_supply: int | None = None
    refills: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.quantity, self.days_supply, self.refills))


@dataclass(frozen=True)
class RequestFacts:
    kind: Kind
    dea_schedule: str  # none | 2 | 3 | 4 | 5
    prescriber_id: int
    drug_name: str
    drug_class: str
    quantity: Decimal  # as written
    days_supply: int
    refills_authorized: int
    change: Change = field(default_factory=Change)


@dataclass(frozen=True)
class Authority:
    allowed: bool
    code: str  # "" when allowed
    message: str
    citation: str
    kind: Kind  # the kind the decision really is (a refill with changes beyond the original is a renewal)
    agreement: AgreementFacts | None = None


def effective_kind(request: RequestFacts) -> Kind:
    """Renewal when the request is one, for Schedule II (never refilled, 21 CFR 1306.12(a)), and
    for any change beyond the original (more quantity or days, other refills)."""
    if request.kind == "renewal" or request.dea_schedule == "2":
        return "renewal"
    c = request.change
    if c.refills is not None and c.refills != request.refills_authorized:
        return "renewal"
    if c.quantity is not None and c.quantity > request.quantity:
        return "renewal"
    if c.days_supply is not None and c.days_supply > request.days_supply:
        return "renewal"
    return "refill"


def _agreement_days(request: RequestFacts) -> int:
    days = request.change.days_supply or request.days_supply
    refills = request.change.refills if request.change.refills is not None else request.refills_authorized
    return days * (refills + 1)


def covering_agreement(request: RequestFacts, decider: Decider, agreements: tuple[AgreementFacts, ...],
                       today: date) -> tuple[AgreementFacts | None, str]:
    """The current agreement under which ``decider`` may authorize this renewal, or (None, why not)."""
    why = "no collaborative practice agreement is recorded for this prescriber and drug"
    for agreement in agreements:
        if agreement.prescriber_id != request.prescriber_id:
            continue
        if not agreement.covers_drug(request.drug_name, request.drug_class):
            continue
        if not agreement.current_on(today):
            why = f"{agreement.describe()} is not in effect on {today.isoformat()}"
            continue
        if decider.kind == "protocol":
            if decider.agreement_id != agreement.id:
                why = "the protocol rule does not name the collaborative practice agreement"
                continue
        elif not agreement.names_pharmacist(decider.user_id, decider.groups):
            why = f"{agreement.describe()} does not name this pharmacist"
            continue
        if agreement.max_days_supply and _agreement_days(request) > agreement.max_days_supply:
            why = (f"{agreement.describe()} allows at most {agreement.max_days_supply} days of supply per renewal "
                   f"({_agreement_days(request)} asked)")
            continue
        return agreement, ""
    return None, why


def authorize(*, request: RequestFacts, decider: Decider, agreements: tuple[AgreementFacts, ...] = (),
              today: date) -> Authority:
    """May ``decider`` approve ``request`` (with its changes)? One answer for every path."""
    kind = effective_kind(request)
    schedule = request.dea_schedule
    if decider.kind in ("technician", "other"):
        return Authority(False, NOT_A_CLINICIAN, "Only a pharmacist or the prescriber records a clinical approval.",
                         "Licensed clinical decision", kind)
    if kind == "refill":
        # Dispensing under existing authorized refills (Schedule III–V within 1306.22 included;
        # eligibility checks those limits). Anyone clinical may release it.
        return Authority(True, "", "A refill of authorized refills: dispensing work.", "Prescription as written",
                         kind)
    # A renewal is a new prescription.
    if is_controlled(schedule):
        if decider.is_request_prescriber:
            return Authority(False, EPCS_REQUIRED,
                             f"Schedule {roman(schedule)}: this system is not EPCS-certified and cannot authorize a "
                             f"controlled prescription. Send a new prescription from your EPCS-certified "
                             f"e-prescribing system, or deny.", CFR_1311, kind)
        return Authority(False, PRESCRIBER_AUTHORIZATION_REQUIRED,
                         f"Schedule {roman(schedule)} renewal: only the prescriber can issue it, as a new prescription "
                         f"from their EPCS-certified e-prescribing system — forward it to them (or deny).",
                         CFR_1311, kind)
    if decider.is_request_prescriber:
        return Authority(True, "", "The prescriber authorizes the renewal.", PRESCRIBER_SOURCE, kind)
    if decider.kind == "prescriber":
        return Authority(False, PRESCRIBER_AUTHORIZATION_REQUIRED,
                         "Only the request's own prescriber can authorize this renewal.", PRESCRIBER_SOURCE, kind)
    agreement, why = covering_agreement(request, decider, agreements, today)
    if agreement is None:
        who = "The protocol" if decider.kind == "protocol" else "A pharmacist"
        return Authority(False, PRESCRIBER_AUTHORIZATION_REQUIRED,
                         f"This is a renewal (a new prescription): only the prescriber authorizes it. {who} may only "
                         f"under a collaborative practice agreement — {why}. Forward it to the prescriber.",
                         CPA_SOURCE, kind)
    return Authority(True, "", f"Authorized under {agreement.describe()}.", CPA_SOURCE, kind, agreement)


def offered_actions(*, request: RequestFacts, decider: Decider, agreements: tuple[AgreementFacts, ...] = (),
                    today: date) -> tuple[str, ...]:
    """What a page offers this decider for this request (no Approve that would be refused)."""
    if decider.kind in ("technician", "other"):
        return ()
    if decider.kind == "prescriber" and not decider.is_request_prescriber:
        return ()  # another prescriber's request
    if decider.is_request_prescriber:
        if effective_kind(request) == "renewal" and is_controlled(request.dea_schedule):
            return (NEW_PRESCRIPTION, DENY)
        return (APPROVE, APPROVE_WITH_CHANGES, DENY)
    actions: list[str] = []
    if authorize(request=request, decider=decider, agreements=agreements, today=today).allowed:
        actions.append(APPROVE)
    actions += [FORWARD, DENY]
    return tuple(actions)


# --- limits on what is authorized ----------------------------------------------------------------

@dataclass(frozen=True)
class LimitPolicy:
    max_authorization_days: int = 365  # refills × days supply (docs/standards.md, configurable)


@dataclass(frozen=True)
class ChangeCheck:
    errors: dict[str, str]  # field → message naming the limit and its source
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_changes(*, dea_schedule: str, quantity: Decimal | None, days_supply: int | None, refills: int | None,
                  today: date, expiration: date, policy: LimitPolicy = LimitPolicy(),
                  units_per_day: Decimal | None = None) -> ChangeCheck:
    """The authorization as it would be sent (the values after the change): refused beyond the
    schedule's refills, the maximum authorization, or the new expiration; quantity and days supply
    positive; a quantity that does not match a readable sig is a warning."""
    errors: dict[str, str] = {}
    if quantity is not None and quantity <= 0:
        errors["quantity"] = "Quantity must be greater than zero."
    if days_supply is not None and days_supply <= 0:
        errors["days_supply"] = "Days supply must be greater than zero."
    if refills is not None and refills < 0:
        errors["refills"] = "Refills cannot be negative."
    warning = sig_quantity_warning(quantity=quantity, days_supply=days_supply, units_per_day=units_per_day)
    warnings = [warning] if warning and not errors else []
    if errors or refills is None:
        return ChangeCheck(errors, tuple(warnings))
    limit = SCHEDULE_REFILL_LIMITS.get(dea_schedule)
    if limit is not None and refills > limit[0]:
        errors["refills"] = (f"{refills} refills is more than Schedule {roman(dea_schedule)} allows: at most "
                             f"{limit[0]} refills ({limit[1]}).")
    elif days_supply:
        total = refills * days_supply
        if total > policy.max_authorization_days:
            errors["refills"] = (f"{refills} refills × {days_supply} days supply = {total} days is more than the "
                                 f"maximum authorization of {policy.max_authorization_days} days "
                                 f"({MAX_AUTHORIZATION_SOURCE}); at most "
                                 f"{policy.max_authorization_days // days_supply} refills.")
        elif total > (expiration - today).days:
            errors["refills"] = (f"{refills} refills × {days_supply} days supply runs past the prescription's "
                                 f"expiration on {expiration.isoformat()} ({EXPIRY_SOURCE}); at most "
                                 f"{max((expiration - today).days // days_supply, 0)} refills.")
    return ChangeCheck(errors, tuple(warnings) if not errors else ())


def format_quantity(value: Decimal) -> str:
    """A quantity as people write it, to 3 decimals (the field's precision): 90.000 → "90",
    0.5 → "0.5" (never "9E+1")."""
    return format(Decimal(value).quantize(Decimal("0.001")).normalize(), "f")


def sig_quantity_warning(*, quantity: Decimal | None, days_supply: int | None,
                         units_per_day: Decimal | None) -> str:
    """Issue 13 item 4: quantity and days supply consistent with a parsable sig. A quantity more
    than 10 % (at least one unit) away from doses a day × days supply is a warning shown before
    approval, never a refusal (a sig may mean more than the parser reads); "" when consistent or
    when the sig does not read plainly (PRN, taper: ``units_per_day`` is None)."""
    if not units_per_day or not quantity or not days_supply or quantity <= 0 or days_supply <= 0:
        return ""
    expected = units_per_day * days_supply
    if abs(quantity - expected) <= max(Decimal("1"), expected * Decimal("0.1")):
        return ""
    return (f"Quantity {format_quantity(quantity)} does not match the sig for {days_supply} days "
            f"({format_quantity(expected)} expected at {format_quantity(units_per_day)} a day).")
