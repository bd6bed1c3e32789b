"""Refill protocol engine: may a request be approved under a practice's standing protocol, or must a
person decide?

Pure: plain frozen dataclasses in, a ``ProtocolDecision`` with the full check trace out; no Django.

How it is used
- ``select_rule`` picks the first rule (in the given order) whose scope — therapeutic class, generic
  drug name, species — matches and whose mode is not "off"; ``evaluate`` runs every check of that
  rule and records each one (passed, failed or skipped) in ``trace``.
- ``outcome`` is the rule's verdict ("approve" only when every check passed); ``mode`` is passed
  through unchanged and tells the service what to do with it: "shadow" = record only, a person
  decides; "assist" = show the verdict as a suggestion; "auto" = apply an "approve" verdict.
- ``suggested_action`` tells the person what the protocol recommends when it does not approve:
  "refer_to_prescriber", "bridge_and_appointment" (one-time bridge, e.g. 30 days and no refills,
  plus SCRIPT denial code AM "needs appointment") or "deny" (too soon, SCRIPT denial code AD).

Always to a person (STANDARDS "Refill protocol defaults"): controlled substances, warfarin (INR
clinic), new therapy (< 6 months), high-alert drugs, a new allergy conflict, an abnormal result
since the last approval. Warfarin is a hard exclusion no rule can lift. ``allow_controlled`` can
only ever cover the *refill* of an already authorized Schedule III–V prescription — never a
renewal (a new controlled prescription needs the registered prescriber, 21 CFR 1306.03/1306.05)
and never Schedule II (no refills, 21 CFR 1306.12). ``allow_high_alert`` can lift the high-alert
stop for other drugs, including the non-warfarin anticoagulants.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from pharmacy.rules.supply import add_months

from .eligibility import TOO_SOON, EligibilityResult

Mode = Literal["off", "shadow", "assist", "auto"]
Outcome = Literal["approve", "refer", "not_applicable"]
Action = Literal["approve", "refer_to_prescriber", "bridge_and_appointment", "deny"]
RuleSpecies = Literal["human", "veterinary", "any"]

MODES: tuple[str, ...] = ("off", "shadow", "assist", "auto")
RULE_SPECIES: tuple[str, ...] = ("human", "veterinary", "any")

# SCRIPT RxRenewalResponse denial reason codes the suggestions carry (STANDARDS).
DENIAL_NEEDS_APPOINTMENT = "AM"
DENIAL_TOO_SOON = "AD"

# AVMA VCPR: an examination within 12 months (most states) — caps the visit window for animals.
VET_EXAM_MONTHS = 12
# Warfarin and its brands: always to a person (STANDARDS: INR clinic).
WARFARIN_NAMES = ("warfarin", "coumadin", "jantoven")
WARFARIN_CLASSES = frozenset({"anticoagulant", "vitamin_k_antagonist"})
# ISMP high-alert medications (community/ambulatory): antithrombotics — anticoagulants count as
# high-alert even when the drug row is not flagged.
HIGH_ALERT_CLASSES = frozenset({"anticoagulant", "vitamin_k_antagonist"})
# Default look-back for "abnormal result since the last approval" when there was none.
DEFAULT_ABNORMAL_LOOKBACK_MONTHS = 12

# Check names (stable; shown in the trace and stored with the decision).
CHECK_IN_SCOPE = "in_scope"
CHECK_MAINTENANCE = "maintenance"
CHECK_NOT_CONTROLLED = "not_controlled"
CHECK_NOT_WARFARIN = "not_warfarin"
CHECK_NOT_HIGH_ALERT = "not_high_alert"
CHECK_VISIT_RECENT = "visit_recent"
CHECK_LAB_PREFIX = "lab_current:"
CHECK_NO_ABNORMAL = "no_abnormal_since_last_approval"
CHECK_ELIGIBLE = "eligible"
CHECK_NO_ALLERGY = "no_new_allergy_conflict"
CHECK_NOT_TOO_SOON = "not_too_soon"
CHECK_THERAPY_ESTABLISHED = "therapy_established"

# Failures no bridge can fix: a person must look at the patient.
_HARD_STOPS = frozenset({
    CHECK_MAINTENANCE, CHECK_NOT_CONTROLLED, CHECK_NOT_WARFARIN, CHECK_NOT_HIGH_ALERT,
    CHECK_NO_ABNORMAL, CHECK_ELIGIBLE, CHECK_NO_ALLERGY, CHECK_THERAPY_ESTABLISHED,
})


@dataclass(frozen=True)
class LabRequirement:
    loinc_codes: tuple[str, ...]  # any one of them satisfies the requirement
    name: str
    max_age_months: int

    def __post_init__(self) -> None:
        if not self.loinc_codes:
            raise ValueError(f"lab requirement {self.name!r} needs at least one LOINC code")
        if self.max_age_months <= 0:
            raise ValueError(f"lab requirement {self.name!r}: max_age_months must be positive")


@dataclass(frozen=True)
class LabFact:
    loinc_code: str
    collected_at: date
    abnormal: bool = False


@dataclass(frozen=True)
class ProtocolRule:
    name: str
    mode: Mode = "shadow"
    therapeutic_classes: tuple[str, ...] = ()  # empty = any class
    drug_names: tuple[str, ...] = ()  # generic names, whole-word, case-insensitive; empty = any drug
    species: RuleSpecies = "human"
    require_maintenance: bool = True
    allow_controlled: bool = False
    allow_high_alert: bool = False
    max_months_since_visit: int = 12
    required_labs: tuple[LabRequirement, ...] = ()
    check_allergy_conflict: bool = True
    check_too_soon: bool = True
    min_therapy_months: int = 6  # new therapy (< 6 months) goes to a person (STANDARDS)
    bridge_days: int = 30  # one-time bridge suggested with "needs appointment" (AM)
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"rule {self.name!r}: mode must be one of {MODES}, got {self.mode!r}")
        if self.species not in RULE_SPECIES:
            raise ValueError(f"rule {self.name!r}: species must be one of {RULE_SPECIES}, "
                             f"got {self.species!r}")
        if self.max_months_since_visit <= 0 or self.min_therapy_months < 0 or self.bridge_days <= 0:
            raise ValueError(f"rule {self.name!r}: month and day limits must be positive")


@dataclass(frozen=True)
class ProtocolFacts:
    therapeutic_class: str
    drug_name: str = ""  # generic name (may carry strength/form: "lisinopril 10 mg tablet")
    dea_schedule: str = "none"
    is_maintenance: bool = False
    is_high_alert: bool = False
    species: str = "human"  # the patient's species: human, dog, cat …
    last_visit_date: date | None = None
    labs: tuple[LabFact, ...] = ()
    last_protocol_approval_date: date | None = None
    new_allergy_conflict: bool = False
    eligibility: EligibilityResult | None = None
    therapy_start_date: date | None = None  # first fill of this therapy

    @property
    def is_veterinary(self) -> bool:
        return self.species not in ("human", "")

    @property
    def request_kind(self) -> str:
        # Without an eligibility result, assume the stricter case: a renewal.
        return self.eligibility.kind if self.eligibility is not None else "renewal"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    skipped: bool = False  # not required by this rule (recorded as passed)


@dataclass(frozen=True)
class ProtocolDecision:
    rule_name: str | None
    outcome: Outcome
    mode: Mode
    suggested_action: Action
    trace: tuple[Check, ...]
    denial_code: str | None = None  # SCRIPT denial reason for a bridge (AM) or a denial (AD)
    bridge_days_supply: int | None = None  # with bridge_and_appointment: days supply, 0 refills
    source: str = ""

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.trace if not c.passed)

    @property
    def auto_approve(self) -> bool:
        """True only when the service may approve without a person: mode auto and verdict approve."""
        return self.mode == "auto" and self.outcome == "approve"


def _name_matches(names: Iterable[str], drug_name: str) -> bool:
    text = drug_name.lower()
    return any(re.search(rf"\b{re.escape(n.lower())}\b", text) for n in names)


def rule_matches(rule: ProtocolRule, facts: ProtocolFacts) -> bool:
    """Scope only (class, drug name, species); mode is not considered."""
    return _scope_check(rule, facts).passed


def _scope_check(rule: ProtocolRule, facts: ProtocolFacts) -> Check:
    problems: list[str] = []
    if rule.species != "any" and (rule.species == "veterinary") != facts.is_veterinary:
        problems.append(f"species {facts.species or 'unknown'} is outside the rule ({rule.species})")
    if rule.therapeutic_classes and facts.therapeutic_class not in rule.therapeutic_classes:
        classes = ", ".join(rule.therapeutic_classes)
        problems.append(f"class {facts.therapeutic_class or 'unknown'} is not one of {classes}")
    if rule.drug_names and not _name_matches(rule.drug_names, facts.drug_name):
        problems.append(f"drug {facts.drug_name or 'unknown'} is not one of {', '.join(rule.drug_names)}")
    if problems:
        return Check(CHECK_IN_SCOPE, False, "; ".join(problems))
    scope = facts.therapeutic_class or "any class"
    return Check(CHECK_IN_SCOPE, True, f"{scope} / {facts.drug_name or 'drug'} / {facts.species} is in scope")


def select_rule(rules: Iterable[ProtocolRule], facts: ProtocolFacts) -> ProtocolRule | None:
    """The first rule, in order, that is not off and whose scope matches; None if none does."""
    for rule in rules:
        if rule.mode != "off" and rule_matches(rule, facts):
            return rule
    return None


def _is_warfarin(facts: ProtocolFacts) -> bool:
    if facts.drug_name:
        return _name_matches(WARFARIN_NAMES, facts.drug_name)
    # Class known, name unknown: cannot rule warfarin out.
    return facts.therapeutic_class in WARFARIN_CLASSES


def _latest(labs: Iterable[LabFact], codes: Iterable[str], today: date) -> LabFact | None:
    wanted = set(codes)
    matching = [lab for lab in labs if lab.loinc_code in wanted and lab.collected_at <= today]
    return max(matching, key=lambda lab: lab.collected_at) if matching else None


def _lab_check(req: LabRequirement, facts: ProtocolFacts, today: date) -> Check:
    name = f"{CHECK_LAB_PREFIX}{req.name}"
    oldest = add_months(today, -req.max_age_months)
    latest = _latest(facts.labs, req.loinc_codes, today)
    if latest is None:
        return Check(name, False, f"{req.name}: no result on file ({', '.join(req.loinc_codes)}); "
                                  f"needed within {req.max_age_months} months")
    if latest.collected_at < oldest:
        return Check(name, False, f"{req.name}: last result {latest.collected_at.isoformat()} "
                                  f"({latest.loinc_code}) is older than {req.max_age_months} months")
    return Check(name, True, f"{req.name}: {latest.loinc_code} on {latest.collected_at.isoformat()} "
                             f"(within {req.max_age_months} months)")


def _checks(rule: ProtocolRule, facts: ProtocolFacts, today: date) -> list[Check]:
    checks = [_scope_check(rule, facts)]
    kind = facts.request_kind

    if rule.require_maintenance:
        checks.append(Check(CHECK_MAINTENANCE, facts.is_maintenance,
                            "maintenance drug" if facts.is_maintenance else "not a maintenance drug"))
    else:
        checks.append(Check(CHECK_MAINTENANCE, True, "not required by this rule", skipped=True))

    controlled = facts.dea_schedule not in ("none", "")
    if not controlled:
        checks.append(Check(CHECK_NOT_CONTROLLED, True, "not a controlled substance"))
    else:
        # Only the refill of an authorized Schedule III–V prescription may ever be allowed by a rule.
        allowed = rule.allow_controlled and facts.dea_schedule != "2" and kind == "refill"
        detail = f"Schedule {facts.dea_schedule} controlled substance"
        detail += " (rule allows refills of Schedules III–V)" if allowed else ": a person decides"
        checks.append(Check(CHECK_NOT_CONTROLLED, allowed, detail))

    # STANDARDS: warfarin always to a person (INR clinic); no rule setting lifts this.
    warfarin = _is_warfarin(facts)
    checks.append(Check(CHECK_NOT_WARFARIN, not warfarin,
                        "warfarin (or an anticoagulant of unknown name): a person decides (INR monitoring)"
                        if warfarin else "not warfarin"))

    high_alert = facts.is_high_alert or facts.therapeutic_class in HIGH_ALERT_CLASSES
    if not high_alert:
        checks.append(Check(CHECK_NOT_HIGH_ALERT, True, "not a high-alert medication"))
    else:
        checks.append(Check(CHECK_NOT_HIGH_ALERT, rule.allow_high_alert,
                            "high-alert medication (ISMP)"
                            + (" allowed by this rule" if rule.allow_high_alert else ": a person decides")))

    months = rule.max_months_since_visit
    if facts.is_veterinary:
        months = min(months, VET_EXAM_MONTHS)  # AVMA VCPR: examination within 12 months
    visit_label = "examination" if facts.is_veterinary else "visit"
    if facts.last_visit_date is None:
        checks.append(Check(CHECK_VISIT_RECENT, False,
                            f"no {visit_label} on file; needed within {months} months"))
    else:
        ok = facts.last_visit_date >= add_months(today, -months)
        checks.append(Check(CHECK_VISIT_RECENT, ok,
                            f"last {visit_label} {facts.last_visit_date.isoformat()} is "
                            f"{'within' if ok else 'older than'} {months} months"))

    for req in rule.required_labs:
        checks.append(_lab_check(req, facts, today))

    # Any abnormal result after the last protocol approval (or, without one, within the look-back).
    if facts.last_protocol_approval_date is not None:
        since = facts.last_protocol_approval_date + timedelta(days=1)  # results of that day were seen
        since_label = f"since the last approval ({facts.last_protocol_approval_date.isoformat()})"
    else:
        lookback = max((r.max_age_months for r in rule.required_labs),
                       default=DEFAULT_ABNORMAL_LOOKBACK_MONTHS)
        since = add_months(today, -lookback)
        since_label = f"in the last {lookback} months (no earlier protocol approval)"
    abnormal = sorted(
        (lab for lab in facts.labs if lab.abnormal and since <= lab.collected_at <= today),
        key=lambda lab: lab.collected_at,
    )
    if abnormal:
        listed = ", ".join(f"{lab.loinc_code} on {lab.collected_at.isoformat()}" for lab in abnormal)
        checks.append(Check(CHECK_NO_ABNORMAL, False, f"abnormal result {since_label}: {listed}"))
    else:
        checks.append(Check(CHECK_NO_ABNORMAL, True, f"no abnormal result {since_label}"))

    elig = facts.eligibility
    if elig is None:
        checks.append(Check(CHECK_ELIGIBLE, False, "no eligibility result"))
    elif elig.eligible:
        checks.append(Check(CHECK_ELIGIBLE, True, f"eligible for a {elig.kind}"))
    else:
        codes = ", ".join(r.code for r in elig.blocking_reasons)
        checks.append(Check(CHECK_ELIGIBLE, False, f"not eligible for a {elig.kind}: {codes}"))

    if rule.check_allergy_conflict:
        conflict = facts.new_allergy_conflict
        checks.append(Check(CHECK_NO_ALLERGY, not conflict,
                            "new allergy conflict" if conflict else "no new allergy conflict"))
    else:
        checks.append(Check(CHECK_NO_ALLERGY, True, "not required by this rule", skipped=True))

    if not rule.check_too_soon:
        checks.append(Check(CHECK_NOT_TOO_SOON, True, "not required by this rule", skipped=True))
    elif elig is None:
        checks.append(Check(CHECK_NOT_TOO_SOON, False, "no eligibility result"))
    elif elig.has(TOO_SOON):
        when = elig.earliest_refill_date.isoformat() if elig.earliest_refill_date else "later"
        checks.append(Check(CHECK_NOT_TOO_SOON, False, f"too soon; eligible on {when}"))
    else:
        checks.append(Check(CHECK_NOT_TOO_SOON, True, "not too soon"))

    if rule.min_therapy_months <= 0:
        checks.append(Check(CHECK_THERAPY_ESTABLISHED, True, "not required by this rule", skipped=True))
    elif facts.therapy_start_date is None:
        checks.append(Check(CHECK_THERAPY_ESTABLISHED, False, "therapy start unknown"))
    else:
        ok = facts.therapy_start_date <= add_months(today, -rule.min_therapy_months)
        checks.append(Check(CHECK_THERAPY_ESTABLISHED, ok,
                            f"therapy started {facts.therapy_start_date.isoformat()}: "
                            + (f"at least {rule.min_therapy_months} months" if ok
                               else f"new therapy (< {rule.min_therapy_months} months)")))
    return checks


def evaluate(rule: ProtocolRule, facts: ProtocolFacts, today: date) -> ProtocolDecision:
    """Run every check of ``rule``; the trace lists all of them, whatever the outcome."""
    trace = tuple(_checks(rule, facts, today))
    failed = {c.name for c in trace if not c.passed}
    if rule.mode == "off" or CHECK_IN_SCOPE in failed:
        return ProtocolDecision(rule.name, "not_applicable", rule.mode, "refer_to_prescriber", trace,
                                source=rule.source)
    if not failed:
        return ProtocolDecision(rule.name, "approve", rule.mode, "approve", trace, source=rule.source)

    elig = facts.eligibility
    only_too_soon_blocks = elig is not None and {r.code for r in elig.blocking_reasons} == {TOO_SOON}
    hard = failed & _HARD_STOPS
    if only_too_soon_blocks:
        hard.discard(CHECK_ELIGIBLE)
    fixable = {CHECK_VISIT_RECENT} | {n for n in failed if n.startswith(CHECK_LAB_PREFIX)}

    if hard:
        action: Action = "refer_to_prescriber"
        code, bridge = None, None
    elif CHECK_NOT_TOO_SOON in failed or only_too_soon_blocks:
        action, code, bridge = "deny", DENIAL_TOO_SOON, None
    elif (
        failed <= fixable
        and facts.request_kind == "renewal"
        and not (facts.is_veterinary and CHECK_VISIT_RECENT in failed)  # no bridge without a VCPR
    ):
        action, code, bridge = "bridge_and_appointment", DENIAL_NEEDS_APPOINTMENT, rule.bridge_days
    else:
        action, code, bridge = "refer_to_prescriber", None, None
    return ProtocolDecision(rule.name, "refer", rule.mode, action, trace, code, bridge, rule.source)


def evaluate_all(
    rules: Iterable[ProtocolRule], facts: ProtocolFacts, today: date
) -> tuple[ProtocolDecision, ...]:
    """One decision per rule, in order (out-of-scope and "off" rules come back not_applicable) —
    for previews and for comparing a shadow rule set with the live one."""
    return tuple(evaluate(rule, facts, today) for rule in rules)


def decide(rules: Iterable[ProtocolRule], facts: ProtocolFacts, today: date) -> ProtocolDecision:
    """``evaluate`` with the selected rule; without one, a not_applicable decision (mode "off")."""
    rule = select_rule(rules, facts)
    if rule is None:
        return ProtocolDecision(None, "not_applicable", "off", "refer_to_prescriber",
                                (Check(CHECK_IN_SCOPE, False, "no protocol rule covers this drug"),))
    return evaluate(rule, facts, today)


def rule_from_dict(data: Mapping[str, Any]) -> ProtocolRule:
    """Build a rule from stored data (lists allowed where tuples are expected); unknown keys raise."""
    values = dict(data)
    labs = values.pop("required_labs", ())
    for key in ("therapeutic_classes", "drug_names"):
        if key in values:
            values[key] = tuple(values[key])
    required = tuple(
        lab if isinstance(lab, LabRequirement)
        else LabRequirement(tuple(lab["loinc_codes"]), lab["name"], int(lab["max_age_months"]))
        for lab in labs
    )
    return ProtocolRule(required_labs=required, **values)
