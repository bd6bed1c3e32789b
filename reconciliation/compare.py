"""Compare an EHR's medication and allergy lists with the pharmacy's active prescriptions.

Pure: plain dataclasses in, findings out; no ORM, no settings. ``reconciliation.services`` maps
models to these inputs and findings to ``Discrepancy`` rows.

Matching an EHR entry to a prescription: by code first (RxNorm RxCUI, NDC normalised to digits),
then by normalised ingredient (lower case, salt words removed, brand → generic through the drug
catalog's synonyms). Findings (DESIGN.md, issue 7 §5):

* ``new_in_ehr`` — an active EHR medication with no active prescription → create a pending
  prescription to confirm with the prescriber.
* ``missing_from_ehr`` — an active prescription absent from a complete EHR list → hold it (the
  EHR may have discontinued it); when the EHR lists it as stopped/completed → discontinue.
* ``dose_change`` / ``frequency_change`` — same ingredient, different strength or frequency →
  hold the prescription and create a pending one with the EHR's directions.
* ``therapeutic_duplication`` — two different ingredients of one therapeutic class would be active.
* ``allergy_conflict`` — an allergy (EHR or pharmacy) names the ingredient of an active
  prescription or a class cross-sensitive with it (``pharmacy.drug_classes.cross_sensitive``:
  penicillins/cephalosporins, sulfonamides, NSAIDs, opioids …) → hold the prescription.
* ``new_allergy`` — an EHR allergy the pharmacy has not recorded → add it.

Priority: HIGH for high-alert/critical classes (anticoagulants, insulins, antiepileptics,
cardiovascular … — ``drug_classes.reconciliation_priority``) and every allergy conflict; LOW for
as-needed (PRN) medications; otherwise the class default (MEDIUM for chronic maintenance).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pharmacy.drug_classes import HIGH, LOW, MEDIUM, class_info, reconciliation_priority
from pharmacy.interop.sig import comparable_frequency
from pharmacy.rules.allergy import (  # noqa: F401 (AllergyEntry, drug_allergy_conflicts: public here too)
    INACTIVE_EHR_STATUSES,
    AllergyEntry,
    allergen_and_class,
    conflict_reason,
    drug_allergy_conflicts,
)
from pharmacy.rules.drug_names import (  # noqa: F401  (normalise_strength, name_strength: one place, the core)
    Catalog,
    default_catalog,
    name_strength,
    normalise_name,
    normalise_strength,
)
from pharmacy.rules.drug_names import digits as _digits

NEW_IN_EHR = "new_in_ehr"
MISSING_FROM_EHR = "missing_from_ehr"
DOSE_CHANGE = "dose_change"
FREQUENCY_CHANGE = "frequency_change"
THERAPEUTIC_DUPLICATION = "therapeutic_duplication"
ALLERGY_CONFLICT = "allergy_conflict"
NEW_ALLERGY = "new_allergy"

CREATE_PENDING = "create_pending"
HOLD = "hold"
DISCONTINUE = "discontinue"
REPLACE_PENDING = "replace_pending"
ADD_ALLERGY = "add_allergy"
NONE = "none"

@dataclass
class EhrMedication:
    name: str = ""
    text: str = ""
    code: str = ""
    code_system: str = ""
    strength: str = ""
    dose: str = ""
    route: str = ""
    frequency: str = ""
    as_needed: bool = False
    status: str = "active"
    negated: bool = False
    prescriber: str = ""
    # Filled by ``resolve`` when not given: catalog ingredient and therapeutic class.
    ingredient: str = ""
    drug_class: str = ""
    high_alert: bool = False


@dataclass
class PharmacyPrescription:
    id: int
    name: str
    strength: str = ""
    frequency: str = ""
    as_needed: bool = False
    rxcui: str = ""
    ndc: str = ""
    drug_class: str = ""
    high_alert: bool = False
    maintenance: bool = False
    sig: str = ""
    prescriber: str = ""


@dataclass
class Finding:
    kind: str
    priority: str
    action: str
    summary: str
    suggested_action: str
    ehr: dict = field(default_factory=dict)
    pharmacy: dict = field(default_factory=dict)
    prescription_id: int | None = None
    reasons: list[str] = field(default_factory=list)


# --- names, codes, strengths -------------------------------------------------------------------

def resolve(med: EhrMedication, catalog: Catalog | None = None) -> EhrMedication:
    catalog = catalog or default_catalog()
    code = med.code if med.code_system in ("rxnorm", "ndc", "") else ""
    if med.code_system == "ndc":
        code = _digits(code)
    if not med.ingredient:
        med.ingredient = catalog.ingredient(med.name or med.text, code)
    if not med.drug_class:
        med.drug_class = catalog.drug_class(med.ingredient)
    med.high_alert = med.high_alert or catalog.high_alert.get(med.ingredient, False)
    return med


def priority_for(drug_class: str, *, as_needed: bool = False, high_alert: bool = False) -> str:
    """HIGH for high-alert/critical classes; LOW for PRN; otherwise the class default."""
    class_priority = reconciliation_priority(drug_class) if drug_class else MEDIUM
    if high_alert or class_priority == HIGH:
        return HIGH
    if as_needed:
        return LOW
    return class_priority


def _ehr_view(med: EhrMedication) -> dict:
    return {k: v for k, v in asdict(med).items() if v not in ("", None, False)} | {"name": med.name or med.text}


def _rx_view(rx: PharmacyPrescription) -> dict:
    return {k: v for k, v in asdict(rx).items() if v not in ("", None, False)}


def _describe_med(med: EhrMedication) -> str:
    parts = [med.name or med.text, med.strength, med.frequency.upper() if med.frequency else "",
             "PRN" if med.as_needed and med.frequency != "prn" else ""]
    return " ".join(p for p in parts if p).strip() or "(unnamed entry)"


def _describe_rx(rx: PharmacyPrescription) -> str:
    return " ".join(p for p in (rx.name, rx.strength) if p)


def _same_code(med: EhrMedication, rx: PharmacyPrescription) -> bool:
    if not med.code:
        return False
    if med.code_system in ("rxnorm", "") and rx.rxcui and med.code == rx.rxcui:
        return True
    return med.code_system == "ndc" and bool(rx.ndc) and _digits(med.code) == _digits(rx.ndc)


# --- comparison --------------------------------------------------------------------------------

def compare(*, ehr_medications: list[EhrMedication], prescriptions: list[PharmacyPrescription],
            ehr_allergies: list[AllergyEntry] = (), pharmacy_allergies: list[AllergyEntry] = (),
            ehr_list_complete: bool = True, catalog: Catalog | None = None) -> list[Finding]:
    """Findings in a stable order: allergy conflicts, then medication findings, then new allergies.

    ``ehr_list_complete`` False (e.g. a single MedicationRequest) suppresses ``missing_from_ehr``:
    an absent entry in a partial list says nothing.
    """
    catalog = catalog or default_catalog()
    meds = [resolve(m, catalog) for m in ehr_medications if not m.negated]
    rx_ingredient = {rx.id: catalog.ingredient(rx.name, rx.rxcui) for rx in prescriptions}
    rx_class = {rx.id: rx.drug_class or catalog.drug_class(rx_ingredient[rx.id]) for rx in prescriptions}
    findings: list[Finding] = []

    # 1. Pair EHR entries with prescriptions (code first, then ingredient).
    matched_rx: dict[int, EhrMedication] = {}
    unmatched: list[EhrMedication] = []
    for med in meds:
        rx = next((r for r in prescriptions if r.id not in matched_rx and _same_code(med, r)), None)
        reason = "same code"
        if rx is None and med.ingredient:
            rx = next((r for r in prescriptions if r.id not in matched_rx and rx_ingredient[r.id] == med.ingredient),
                      None)
            reason = "same ingredient"
        if rx is None:
            unmatched.append(med)
            continue
        matched_rx[rx.id] = med
        if med.status and med.status.lower() in INACTIVE_EHR_STATUSES:
            findings.append(Finding(
                kind=MISSING_FROM_EHR, action=DISCONTINUE,
                priority=priority_for(rx_class[rx.id], as_needed=rx.as_needed, high_alert=rx.high_alert),
                summary=f"{_describe_rx(rx)} is {med.status} in the EHR",
                suggested_action=f"The EHR lists {med.name or med.text} as {med.status}. Confirm with the prescriber, "
                                 f"then discontinue Rx {rx.id} so it is not refilled.",
                ehr=_ehr_view(med), pharmacy=_rx_view(rx), prescription_id=rx.id, reasons=[reason]))
            continue
        ehr_strength, rx_strength = normalise_strength(med.strength), normalise_strength(rx.strength)
        priority = priority_for(rx_class[rx.id] or med.drug_class, as_needed=med.as_needed and rx.as_needed,
                                high_alert=rx.high_alert or med.high_alert)
        if ehr_strength and rx_strength and ehr_strength != rx_strength:
            findings.append(Finding(
                kind=DOSE_CHANGE, action=REPLACE_PENDING, priority=priority,
                summary=f"{med.ingredient or med.name}: EHR {med.strength}, pharmacy {rx.strength}",
                suggested_action=f"The EHR now lists {med.strength}. Put Rx {rx.id} ({rx.strength}) on hold and create "
                                 f"a pending prescription for {med.strength} to confirm with the prescriber.",
                ehr=_ehr_view(med), pharmacy=_rx_view(rx), prescription_id=rx.id, reasons=[reason]))
            continue
        ehr_freq, rx_freq = comparable_frequency(med.frequency), comparable_frequency(rx.frequency)
        if ehr_freq and rx_freq and ehr_freq != rx_freq:
            findings.append(Finding(
                kind=FREQUENCY_CHANGE, action=REPLACE_PENDING, priority=priority,
                summary=f"{med.ingredient or med.name}: EHR {ehr_freq.upper()}, pharmacy {rx_freq.upper()}",
                suggested_action=f"The EHR now says {ehr_freq.upper()} instead of {rx_freq.upper()}. Put Rx {rx.id} on "
                                 f"hold and create a pending prescription with the new frequency to confirm "
                                 f"with the prescriber.",
                ehr=_ehr_view(med), pharmacy=_rx_view(rx), prescription_id=rx.id, reasons=[reason]))

    # 2. EHR entries without a prescription.
    new_active = [m for m in unmatched if not (m.status and m.status.lower() in INACTIVE_EHR_STATUSES)]
    for med in new_active:
        known = bool(med.drug_class)
        findings.append(Finding(
            kind=NEW_IN_EHR, action=CREATE_PENDING,
            priority=priority_for(med.drug_class, as_needed=med.as_needed, high_alert=med.high_alert),
            summary=f"{_describe_med(med)} is in the EHR but has no active prescription here",
            suggested_action=(f"Create a pending prescription for {_describe_med(med)} and confirm it with the "
                              f"prescriber before it is filled." if known else
                              f"“{med.text or med.name}” was not recognised in the drug catalog: identify the drug "
                              f"with the prescriber before creating anything."),
            ehr=_ehr_view(med), reasons=["no prescription with the same code or ingredient"]))

    # 3. Prescriptions the EHR does not list.
    if ehr_list_complete:
        for rx in prescriptions:
            if rx.id in matched_rx:
                continue
            findings.append(
                Finding(
                    kind=MISSING_FROM_EHR,
                    action=HOLD,
                    priority=priority_for(rx_class[rx.id], as_needed=rx.as_needed, high_alert=rx.high_alert),
                    summary=f"{_describe_rx(rx)} (Rx {rx.id}) is not on the EHR's list",
                    suggested_action=f"The EHR no longer lists {rx.name}; it may have been discontinued. "
                    f"Put Rx {rx.id} on hold until the prescriber confirms.",
                    pharmacy=_rx_view(rx),
                    prescription_id=rx.id,
                    reasons=["no EHR entry with the same code or ingredient"],
                )
            )

    # 4. Therapeutic duplication: the pharmacy's active list plus new EHR entries, by class.
    by_class: dict[str, list[tuple[str, str, int | None, dict]]] = {}
    for rx in prescriptions:
        if rx_class[rx.id]:
            by_class.setdefault(rx_class[rx.id], []).append((rx_ingredient[rx.id], _describe_rx(rx), rx.id,
                                                             _rx_view(rx)))
    for med in new_active:
        if med.drug_class:
            by_class.setdefault(med.drug_class, []).append((med.ingredient, _describe_med(med), None, _ehr_view(med)))
    for slug, items in sorted(by_class.items()):
        if len({ingredient for ingredient, *_ in items}) < 2 or slug in ("other", "vitamin_supplement",
                                                                           "electrolyte_supplement"):
            continue
        label = class_info(slug).label if class_info(slug) else slug
        names = ", ".join(desc for _, desc, _, _ in items)
        rx_ids = [rx_id for _, _, rx_id, _ in items if rx_id is not None]
        high_alert = any(r.high_alert for r in prescriptions if r.id in rx_ids)
        findings.append(Finding(
            kind=THERAPEUTIC_DUPLICATION, action=HOLD if rx_ids else NONE,
            priority=priority_for(slug, high_alert=high_alert),
            summary=f"Two or more {label.lower()}: {names}",
            suggested_action=(f"Ask the prescriber which {label.lower()} to continue; accepting puts Rx {rx_ids[0]} "
                              f"on hold." if rx_ids else f"Ask the prescriber which {label.lower()} to continue."),
            ehr={"items": [view for _, _, rx_id, view in items if rx_id is None]},
            pharmacy={"items": [view for _, _, rx_id, view in items if rx_id is not None]},
            prescription_id=rx_ids[0] if rx_ids else None, reasons=[f"same therapeutic class {slug}"]))

    # 5. Allergies against active prescriptions (and against new EHR entries, for information).
    active_allergies = [a for a in [*pharmacy_allergies, *ehr_allergies]
                        if not a.negated and (a.status or "active").lower() not in INACTIVE_EHR_STATUSES]
    seen: set[tuple[int, str]] = set()
    conflicts: list[Finding] = []
    for allergy in active_allergies:
        allergen, allergy_class = allergen_and_class(allergy, catalog)
        for rx in prescriptions:
            why = conflict_reason(allergen=allergen, allergy_class=allergy_class, substance=allergy.substance,
                                  drug_ingredient=rx_ingredient[rx.id], drug_class=rx_class[rx.id])
            key = (rx.id, normalise_name(allergy.substance))
            if why and key not in seen:
                seen.add(key)
                conflicts.append(Finding(
                    kind=ALLERGY_CONFLICT, action=HOLD, priority=HIGH,
                    summary=f"{allergy.substance} allergy ({allergy.source}) conflicts with {_describe_rx(rx)}",
                    suggested_action=f"{why}. Put Rx {rx.id} on hold and contact the prescriber for an alternative.",
                    ehr=asdict(allergy) if allergy.source == "ehr" else {},
                    pharmacy=_rx_view(rx) | ({"allergy": asdict(allergy)} if allergy.source == "pharmacy" else {}),
                    prescription_id=rx.id, reasons=[why]))
    findings[:0] = conflicts

    # 6. EHR allergies missing from the pharmacy's file.
    on_file = {normalise_name(a.substance) for a in pharmacy_allergies} | {
        a.code for a in pharmacy_allergies if a.code}
    for allergy in ehr_allergies:
        if allergy.negated or (allergy.status or "active").lower() in INACTIVE_EHR_STATUSES:
            continue
        if normalise_name(allergy.substance) in on_file or (allergy.code and allergy.code in on_file):
            continue
        severe = (allergy.severity or "").lower() == "severe"
        findings.append(Finding(
            kind=NEW_ALLERGY, action=ADD_ALLERGY, priority=HIGH if severe else MEDIUM,
            summary=f"{allergy.substance} allergy is in the EHR but not on the pharmacy's file",
            suggested_action=f"Add {allergy.substance}"
                             f"{' (' + allergy.reaction + ')' if allergy.reaction else ''} to the patient's allergies.",
            ehr=asdict(allergy), reasons=["no allergy with the same substance or code on file"]))
    return findings


Classifier = Callable[[str], str]
