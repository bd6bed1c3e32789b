"""Payer criteria checker. Pure: plain data in, a result with reasons out (no ORM, no settings).

Kinds (issue 8, "Payer criteria"): required diagnosis code prefixes (ICD-10-CM), step therapy
(drugs/classes tried for at least N days — fill history is the evidence), quantity limits,
required labs (LOINC, maximum age) and expedited eligibility. Each criterion is ``met``,
``partial`` (something is there but not enough) or ``missing``; every non-met one says what to
ask the prescriber for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

MET, PARTIAL, MISSING = "met", "partial", "missing"


@dataclass(frozen=True)
class DiagnosisFact:
    code: str
    description: str = ""
    active: bool = True
    evidence_id: str = ""


@dataclass(frozen=True)
class TherapyFact:
    drug_name: str
    drug_class: str
    start: date
    end: date  # last covered day
    days: int  # days covered by fills
    evidence_id: str = ""


@dataclass(frozen=True)
class LabFact:
    loinc: str
    name: str
    value: str
    collected: date
    evidence_id: str = ""


@dataclass(frozen=True)
class StepRule:
    label: str
    drugs: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    min_days: int = 0


@dataclass(frozen=True)
class LabRule:
    name: str
    loinc_codes: tuple[str, ...]
    max_age_days: int


@dataclass(frozen=True)
class CriteriaSpec:
    diagnosis_prefixes: tuple[str, ...] = ()
    step_therapy: tuple[StepRule, ...] = ()
    max_quantity: Decimal | None = None
    quantity_period_days: int | None = None
    required_labs: tuple[LabRule, ...] = ()
    expedited_diagnosis_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestFacts:
    quantity: Decimal
    days_supply: int
    indication_code: str = ""
    indication_evidence_id: str = ""
    diagnoses: tuple[DiagnosisFact, ...] = ()
    therapies: tuple[TherapyFact, ...] = ()
    labs: tuple[LabFact, ...] = ()
    today: date = field(default_factory=date.today)


@dataclass(frozen=True)
class CriterionResult:
    kind: str  # diagnosis | step_therapy | quantity | lab
    name: str
    status: str  # met | partial | missing
    detail: str
    evidence: tuple[str, ...] = ()
    ask: str = ""

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "evidence": list(self.evidence),
            "ask": self.ask,
        }


@dataclass(frozen=True)
class CriteriaResult:
    items: tuple[CriterionResult, ...]
    expedited: bool
    expedited_reason: str = ""

    @property
    def met(self) -> list[CriterionResult]:
        return [i for i in self.items if i.status == MET]

    @property
    def partial(self) -> list[CriterionResult]:
        return [i for i in self.items if i.status == PARTIAL]

    @property
    def missing(self) -> list[CriterionResult]:
        return [i for i in self.items if i.status == MISSING]

    @property
    def all_met(self) -> bool:
        return all(i.status == MET for i in self.items)

    @property
    def asks(self) -> list[str]:
        return [i.ask for i in self.items if i.status != MET and i.ask]

    def as_dict(self) -> dict:
        return {
            "items": [i.as_dict() for i in self.items],
            "all_met": self.all_met,
            "expedited": self.expedited,
            "expedited_reason": self.expedited_reason,
            "asks": self.asks,
            "counts": {MET: len(self.met), PARTIAL: len(self.partial), MISSING: len(self.missing)},
        }


def _norm_code(code: str) -> str:
    return code.replace(".", "").strip().upper()


def _matches(code: str, prefixes) -> bool:
    c = _norm_code(code)
    return any(c.startswith(_norm_code(p)) for p in prefixes if p)


def check_diagnosis(spec: CriteriaSpec, facts: RequestFacts) -> CriterionResult | None:
    if not spec.diagnosis_prefixes:
        return None
    name = "Diagnosis " + " or ".join(spec.diagnosis_prefixes)
    active = [d for d in facts.diagnoses if d.active and _matches(d.code, spec.diagnosis_prefixes)]
    if active:
        return CriterionResult(
            "diagnosis",
            name,
            MET,
            f"Documented diagnosis {active[0].code} {active[0].description}".strip(),
            tuple(d.evidence_id for d in active if d.evidence_id),
        )
    weak = [d for d in facts.diagnoses if not d.active and _matches(d.code, spec.diagnosis_prefixes)]
    if weak:
        return CriterionResult(
            "diagnosis",
            name,
            PARTIAL,
            f"Diagnosis {weak[0].code} is recorded but not active",
            tuple(d.evidence_id for d in weak if d.evidence_id),
            ask=f"Confirm the current diagnosis ({', '.join(spec.diagnosis_prefixes)}).",
        )
    if facts.indication_code and _matches(facts.indication_code, spec.diagnosis_prefixes):
        return CriterionResult(
            "diagnosis",
            name,
            PARTIAL,
            f"Only the prescription's indication {facts.indication_code} names it; no diagnosis on file",
            (facts.indication_evidence_id,) if facts.indication_evidence_id else (),
            ask="Send chart notes documenting the diagnosis.",
        )
    return CriterionResult(
        "diagnosis",
        name,
        MISSING,
        "No matching diagnosis on file",
        ask=f"Ask for a documented diagnosis ({', '.join(spec.diagnosis_prefixes)}).",
    )


def check_step(rule: StepRule, facts: RequestFacts) -> CriterionResult:
    drugs = {d.lower() for d in rule.drugs}
    classes = set(rule.classes)
    tried = [
        t
        for t in facts.therapies
        if t.drug_name.lower() in drugs or (t.drug_class and t.drug_class in classes)
    ]
    name = f"Step therapy: {rule.label} for {rule.min_days} days"
    if not tried:
        return CriterionResult(
            "step_therapy",
            name,
            MISSING,
            f"No fills of {rule.label} found",
            ask=f"Ask whether {rule.label} was tried (dates, outcome) or is contraindicated.",
        )
    best = max(tried, key=lambda t: t.days)
    ids = tuple(t.evidence_id for t in tried if t.evidence_id)
    if best.days >= rule.min_days:
        return CriterionResult(
            "step_therapy",
            name,
            MET,
            f"{best.drug_name} {best.start:%Y-%m-%d} to {best.end:%Y-%m-%d} ({best.days} days)",
            ids,
        )
    return CriterionResult(
        "step_therapy",
        name,
        PARTIAL,
        f"{best.drug_name} only {best.days} of {rule.min_days} days ({best.start:%Y-%m-%d} to {best.end:%Y-%m-%d})",
        ids,
        ask=f"Ask why {rule.label} was stopped early (failure, intolerance).",
    )


def check_quantity(spec: CriteriaSpec, facts: RequestFacts) -> CriterionResult | None:
    if spec.max_quantity is None or not spec.quantity_period_days:
        return None
    limit, period = Decimal(spec.max_quantity), spec.quantity_period_days
    name = f"Quantity limit {limit.normalize():f} per {period} days"
    per_day, allowed_per_day = facts.quantity / facts.days_supply, limit / period
    if per_day > allowed_per_day:
        return CriterionResult(
            "quantity",
            name,
            MISSING,
            f"Requested {facts.quantity.normalize():f} for {facts.days_supply} days exceeds the limit",
            ask="Ask for the clinical reason for a dose above the plan's quantity limit.",
        )
    if facts.quantity > limit:
        return CriterionResult(
            "quantity",
            name,
            PARTIAL,
            f"Daily dose within the limit but {facts.quantity.normalize():f} in one fill exceeds {limit.normalize():f}",
            ask=f"Ask whether the fill can be split into {period}-day supplies.",
        )
    return CriterionResult(
        "quantity",
        name,
        MET,
        f"Requested {facts.quantity.normalize():f} for {facts.days_supply} days is within the limit",
    )


def check_lab(rule: LabRule, facts: RequestFacts) -> CriterionResult:
    labs = sorted(
        (lab for lab in facts.labs if lab.loinc in rule.loinc_codes),
        key=lambda lab: lab.collected,
        reverse=True,
    )
    name = f"Lab: {rule.name} within {rule.max_age_days} days"
    if not labs:
        return CriterionResult(
            "lab",
            name,
            MISSING,
            f"No {rule.name} result on file",
            ask=f"Ask for a recent {rule.name} result.",
        )
    latest = labs[0]
    age = (facts.today - latest.collected).days
    if age <= rule.max_age_days:
        return CriterionResult(
            "lab",
            name,
            MET,
            f"{latest.name} {latest.value} on {latest.collected:%Y-%m-%d}",
            (latest.evidence_id,) if latest.evidence_id else (),
        )
    return CriterionResult(
        "lab",
        name,
        PARTIAL,
        f"Latest {latest.name} is {age} days old ({latest.collected:%Y-%m-%d})",
        (latest.evidence_id,) if latest.evidence_id else (),
        ask=f"Ask for a {rule.name} result from the last {rule.max_age_days} days.",
    )


def check_criteria(spec: CriteriaSpec, facts: RequestFacts) -> CriteriaResult:
    items: list[CriterionResult] = []
    dx = check_diagnosis(spec, facts)
    if dx:
        items.append(dx)
    items.extend(check_step(rule, facts) for rule in spec.step_therapy)
    qty = check_quantity(spec, facts)
    if qty:
        items.append(qty)
    items.extend(check_lab(rule, facts) for rule in spec.required_labs)
    expedited = [
        d for d in facts.diagnoses if d.active and _matches(d.code, spec.expedited_diagnosis_prefixes)
    ]
    reason = f"Diagnosis {expedited[0].code} qualifies for expedited review" if expedited else ""
    return CriteriaResult(tuple(items), bool(expedited), reason)


# --- spec from stored JSON (admin, import command) ---------------------------------------------


def spec_errors(data: dict) -> dict[str, str]:
    """Field → message for a criteria definition (used by model clean and the import command)."""
    errors: dict[str, str] = {}
    for key in ("diagnosis_prefixes", "expedited_diagnosis_prefixes"):
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            errors[key] = "Must be a list of ICD-10-CM code prefixes."
    steps = data.get("step_therapy") or []
    if not isinstance(steps, list):
        errors["step_therapy"] = "Must be a list of steps."
    else:
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or not (step.get("drugs") or step.get("classes")):
                errors["step_therapy"] = f"Step {i + 1} needs drugs or classes."
                break
            if not isinstance(step.get("min_days", 0), int) or step.get("min_days", 0) < 0:
                errors["step_therapy"] = f"Step {i + 1}: min_days must be a whole number ≥ 0."
                break
    labs = data.get("required_labs") or []
    if not isinstance(labs, list):
        errors["required_labs"] = "Must be a list of labs."
    else:
        for i, lab in enumerate(labs):
            if (
                not isinstance(lab, dict)
                or not lab.get("loinc_codes")
                or not isinstance(lab.get("max_age_days"), int)
            ):
                errors["required_labs"] = f"Lab {i + 1} needs loinc_codes and a whole-number max_age_days."
                break
    qty = data.get("max_quantity")
    if qty not in (None, ""):
        try:
            if Decimal(str(qty)) <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors["max_quantity"] = "Must be a number greater than zero."
    return errors


def spec_from_dict(data: dict) -> CriteriaSpec:
    steps = tuple(
        StepRule(
            label=s.get("label") or ", ".join([*s.get("drugs", []), *s.get("classes", [])]),
            drugs=tuple(s.get("drugs", [])),
            classes=tuple(s.get("classes", [])),
            min_days=int(s.get("min_days", 0)),
        )
        for s in data.get("step_therapy") or []
    )
    labs = tuple(
        LabRule(
            name=lab.get("name") or lab["loinc_codes"][0],
            loinc_codes=tuple(lab["loinc_codes"]),
            max_age_days=int(lab["max_age_days"]),
        )
        for lab in data.get("required_labs") or []
    )
    qty = data.get("max_quantity")
    return CriteriaSpec(
        diagnosis_prefixes=tuple(data.get("diagnosis_prefixes") or ()),
        step_therapy=steps,
        max_quantity=Decimal(str(qty)) if qty not in (None, "") else None,
        quantity_period_days=int(data["quantity_period_days"]) if data.get("quantity_period_days") else None,
        required_labs=labs,
        expedited_diagnosis_prefixes=tuple(data.get("expedited_diagnosis_prefixes") or ()),
    )
