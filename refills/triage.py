"""The structured triage summary each refill request carries (issue 4, part 10): who, what, when
it was last filled and for how long, how long since the last visit, relevant history and labs,
priority (urgent / routine) and the action required.

``triage_summary`` is pure (plain facts in, a JSON-ready dict out). ``triage_facts`` maps rows that
are already loaded (a prescription with its fills, the patient's diagnoses, allergies and labs) to
those facts without running queries of its own.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

#: Run-out this close (days) or already past makes a request urgent.
URGENT_RUN_OUT_DAYS = 2
#: Words in a patient's message that say they are out or about to be (English; matched as words).
URGENT_WORDS = re.compile(
    r"\b(ran out|run out|running out|out of|no more|none left|last (?:pill|dose|tablet)s?|urgent|urgently|asap|"
    r"emergency|today|tonight|seizur\w*|can'?t breathe|chest pain)\b", re.IGNORECASE)
CRITICAL_FLAGS = ("HH", "LL")
ABNORMAL_FLAGS = ("H", "L", "HH", "LL", "A")
MAX_LABS = 6
MAX_HISTORY = 8


@dataclass(frozen=True)
class LabFact:
    name: str
    value: str
    unit: str
    flag: str
    collected: date
    loinc: str = ""


@dataclass(frozen=True)
class TriageFacts:
    patient: str  # "Doe, John (MRN M000001), 60 y" or "Biscuit (dog) — owner Rita Moreno"
    medication: str  # "lisinopril 10 mg tablet"
    sig: str
    today: date
    kind: str = "refill"  # refill | renewal
    status: str = ""  # the request's status after evaluation
    last_fill_date: date | None = None
    last_fill_days_supply: int | None = None
    run_out_date: date | None = None
    last_visit_date: date | None = None
    drug_is_urgent: bool = False
    dea_schedule: str = "none"
    refills_remaining: int | None = None
    diagnoses: tuple[str, ...] = ()
    allergies: tuple[str, ...] = ()
    labs: tuple[LabFact, ...] = ()
    relevant_loinc: tuple[str, ...] = ()  # labs the protocol rule asks for, listed first
    blocking_reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # non-blocking eligibility notes
    protocol_suggestion: str = ""
    message_text: str = ""  # the patient's own words, for intake requests
    extra: dict = field(default_factory=dict)


def triage_summary(f: TriageFacts) -> dict:
    """The summary, JSON-ready. Keys: patient, medication, last_filled, days_supply, run_out_date,
    days_since_last_visit, relevant_history, labs, priority, priority_reasons, action_required."""
    priority_reasons = _priority_reasons(f)
    return {
        "patient": f.patient,
        "medication": f"{f.medication} — {f.sig}" if f.sig else f.medication,
        "last_filled": f.last_fill_date.isoformat() if f.last_fill_date else None,
        "days_supply": f.last_fill_days_supply,
        "run_out_date": f.run_out_date.isoformat() if f.run_out_date else None,
        "days_since_last_visit": (f.today - f.last_visit_date).days if f.last_visit_date else None,
        "relevant_history": _history(f),
        "labs": [_lab_text(lab) for lab in _relevant_labs(f)],
        "priority": "urgent" if priority_reasons else "routine",
        "priority_reasons": priority_reasons,
        "action_required": action_required(f),
        **f.extra,
    }


def _priority_reasons(f: TriageFacts) -> list[str]:
    reasons = []
    if f.drug_is_urgent:
        reasons.append("running out of this drug is clinically urgent")
    if f.run_out_date is not None:
        left = (f.run_out_date - f.today).days
        if left < 0:
            reasons.append(f"ran out {-left} day{'s' if left != -1 else ''} ago")
        elif left <= URGENT_RUN_OUT_DAYS:
            reasons.append(f"runs out in {left} day{'s' if left != 1 else ''}")
    if f.message_text:
        words = sorted({m.group(0).lower() for m in URGENT_WORDS.finditer(f.message_text)})
        if words:
            reasons.append("the message says: " + ", ".join(f"“{w}”" for w in words))
    critical = [lab for lab in f.labs if lab.flag in CRITICAL_FLAGS]
    if critical:
        reasons.append("critical lab: " + ", ".join(_lab_text(lab) for lab in critical[:2]))
    return reasons


def action_required(f: TriageFacts) -> str:
    if f.status == "auto_approved":
        return "None — approved by protocol; the authorization goes to the pharmacy."
    if f.status in ("approved", "approved_with_changes", "sent_to_pharmacy", "filled", "partially_filled",
                    "picked_up"):
        return "None — decided."
    if f.status in ("denied", "cancelled", "not_dispensed"):
        return "None — closed."
    if f.status == "awaiting_prescriber":
        return "Waiting for the prescriber's answer."
    if f.kind == "renewal":
        schedule = " (Schedule II: a new prescription is required)" if f.dea_schedule == "2" else ""
        return "Prescriber authorization needed: forward the renewal to the prescriber" + schedule + "."
    if f.blocking_reasons:
        return "Pharmacist review: " + "; ".join(f.blocking_reasons[:3]) + "."
    if f.protocol_suggestion == "approve":
        return "Pharmacist review: the protocol suggests approval; confirm."
    return "Pharmacist review."


def _history(f: TriageFacts) -> list[str]:
    items = list(f.diagnoses[:MAX_HISTORY])
    items += [f"Allergy: {a}" for a in f.allergies[: max(MAX_HISTORY - len(items), 2)]]
    if f.refills_remaining is not None:
        items.append(f"Refills remaining: {f.refills_remaining}")
    if f.dea_schedule not in ("", "none"):
        items.append(f"Controlled substance, Schedule {f.dea_schedule}")
    items += list(f.notes[:3])
    return items


def _relevant_labs(f: TriageFacts) -> list[LabFact]:
    """Latest result per test: the protocol's required tests first, then abnormal ones, then newest."""
    latest: dict[str, LabFact] = {}
    for lab in sorted(f.labs, key=lambda x: x.collected, reverse=True):
        latest.setdefault(lab.loinc or lab.name, lab)

    def rank(lab: LabFact):
        return (lab.loinc not in f.relevant_loinc, lab.flag not in ABNORMAL_FLAGS, -lab.collected.toordinal())

    return sorted(latest.values(), key=rank)[:MAX_LABS]


def _lab_text(lab: LabFact) -> str:
    flag = f" ({lab.flag})" if lab.flag else ""
    unit = f" {lab.unit}" if lab.unit else ""
    return f"{lab.name} {lab.value}{unit}{flag} on {lab.collected.isoformat()}"


# --- rows → facts (no queries: pass what is loaded) --------------------------------------------------

def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def patient_label(patient, today: date) -> str:
    if patient.is_animal:
        owner = f"{patient.owner_first_name} {patient.owner_last_name}".strip()
        breed = f", {patient.breed}" if patient.breed else ""
        return f"{patient.first_name} {patient.last_name} ({patient.get_species_display().lower()}{breed}, " \
               f"{_age(patient.birth_date, today)} y) — owner {owner}"
    return f"{patient.last_name}, {patient.first_name} (MRN {patient.mrn}, {_age(patient.birth_date, today)} y)"


def triage_facts(*, rx, patient, today: date, fills: Iterable = (), diagnoses: Iterable = (),
                 allergies: Iterable = (), labs: Iterable = (), kind: str = "refill", status: str = "",
                 run_out_date: date | None = None, eligibility: Sequence[dict] = (), protocol_suggestion: str = "",
                 relevant_loinc: Sequence[str] = (), message_text: str = "", extra: dict | None = None) -> TriageFacts:
    counted = [f for f in fills if f.status in ("dispensed", "partially_dispensed", "picked_up")]
    last = max(counted, key=lambda f: f.fill_date, default=None)
    if run_out_date is None and last is not None:
        run_out_date = last.fill_date + timedelta(days=last.days_supply)
    lab_facts = []
    for lab in labs:
        collected = lab.collected_at.date() if isinstance(lab.collected_at, datetime) else lab.collected_at
        lab_facts.append(LabFact(name=lab.name, value=lab.value, unit=lab.unit, flag=lab.abnormal_flag or "",
                                 collected=collected, loinc=lab.loinc_code))
    drug = rx.drug
    return TriageFacts(
        patient=patient_label(patient, today),
        medication=" ".join(part for part in (drug.name, drug.strength, drug.dose_form) if part),
        sig=rx.sig, today=today, kind=kind, status=status,
        last_fill_date=last.fill_date if last else None, last_fill_days_supply=last.days_supply if last else None,
        run_out_date=run_out_date, last_visit_date=patient.last_visit_date, drug_is_urgent=drug.is_urgent,
        dea_schedule=rx.dea_schedule, refills_remaining=rx.refills_remaining,
        diagnoses=tuple(f"{d.code} {d.description}".strip() for d in diagnoses if d.status == "active"),
        allergies=tuple(f"{a.substance}" + (f" ({a.reaction})" if a.reaction else "") for a in allergies
                        if a.status == "active"),
        labs=tuple(lab_facts), relevant_loinc=tuple(relevant_loinc),
        blocking_reasons=tuple(r["message"] for r in eligibility if r.get("blocking")),
        notes=tuple(r["message"] for r in eligibility if not r.get("blocking")),
        protocol_suggestion=protocol_suggestion, message_text=message_text, extra=dict(extra or {}),
    )


TRIAGE_LABELS = {
    "patient": "Patient", "medication": "Medication", "last_filled": "Last filled", "days_supply": "Days supply",
    "run_out_date": "Runs out", "days_since_last_visit": "Days since last visit",
    "relevant_history": "Relevant history", "labs": "Labs", "priority": "Priority",
    "priority_reasons": "Why", "action_required": "Action required", "message": "Patient's message",
    "match": "Match",
}


def summary_rows(summary: dict) -> list[tuple[str, str]]:
    """(label, text) pairs for a page; lists joined, empty values as a dash."""
    from pharmacy.readable import inline_text

    rows = []
    for key, value in (summary or {}).items():
        text = inline_text(value)  # lists joined, mappings as "Label: value", never a repr
        rows.append((TRIAGE_LABELS.get(key, key.replace("_", " ").capitalize()), text))
    return rows
