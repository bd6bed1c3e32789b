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

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from pharmacy.drug_classes import HIGH, LOW, MEDIUM, class_info, cross_sensitive, reconciliation_priority
from pharmacy.interop.sig import comparable_frequency

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

INACTIVE_EHR_STATUSES = {"stopped", "completed", "cancelled", "entered-in-error", "not-taken", "inactive",
                         "discontinued", "on-hold", "resolved", "refuted"}


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
class AllergyEntry:
    substance: str
    code: str = ""
    code_system: str = ""
    drug_class: str = ""
    reaction: str = ""
    severity: str = ""
    status: str = "active"
    negated: bool = False
    source: str = "ehr"  # ehr | pharmacy
    id: int | None = None


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

_SALTS = {"hydrochloride", "hcl", "sodium", "potassium", "calcium", "magnesium", "succinate", "tartrate",
          "besylate", "maleate", "mesylate", "fumarate", "sulfate", "citrate", "acetate", "phosphate",
          "bromide", "chloride", "er", "xr", "sr", "xl", "cr", "dr", "ec", "la", "oral", "tablet", "tablets",
          "tab", "tabs", "capsule", "capsules", "cap", "caps", "solution", "suspension", "injection", "pen",
          "extended", "release", "delayed", "immediate"}
_STRENGTH_RE = re.compile(r"\d[\d.,/\-]*\s*(mg|mcg|g|ml|units?|iu|meq|%|mmol)?\b", re.I)


def normalise_name(name: str) -> str:
    """Lower-case ingredient words without strengths, dose forms and salt names."""
    text = _STRENGTH_RE.sub(" ", (name or "").lower())
    words = [w for w in re.split(r"[^a-z]+", text) if w and w not in _SALTS]
    return " ".join(words)


def normalise_strength(value: str) -> str:
    """"10MG", "10 mg", "10.0 mg tablet" → "10 mg"; "" when no number is present."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(mg|mcg|g|ml|units?|iu|meq|%|mmol)?", (value or "").lower())
    if not m:
        return ""
    number = m.group(1).rstrip("0").rstrip(".") if "." in m.group(1) else m.group(1)
    unit = (m.group(2) or "").replace("units", "unit")
    return f"{number} {unit}".strip()


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


class Catalog:
    """Name and code lookups over drug catalog rows (dicts with name, brand_names, rxcui, ndc,
    therapeutic_class, is_high_alert). Built by the caller; ``default_catalog`` uses the
    shipped catalog."""

    def __init__(self, entries: Iterable[dict]):
        self.generic: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.high_alert: dict[str, bool] = {}
        self.by_code: dict[str, str] = {}
        for entry in entries:
            generic = normalise_name(entry.get("name") or "")
            if not generic:
                continue
            self.generic[generic] = generic
            for brand in entry.get("brand_names") or []:
                self.generic.setdefault(normalise_name(brand), generic)
            if entry.get("therapeutic_class"):
                self.classes.setdefault(generic, entry["therapeutic_class"])
            self.high_alert[generic] = self.high_alert.get(generic, False) or bool(entry.get("is_high_alert"))
            for code in (entry.get("rxcui"), _digits(entry.get("ndc") or "")):
                if code:
                    self.by_code.setdefault(code, generic)

    def ingredient(self, name: str, code: str = "") -> str:
        if code and code in self.by_code:
            return self.by_code[code]
        norm = normalise_name(name)
        if norm in self.generic:
            return self.generic[norm]
        # "metoprolol succinate er" → try the longest known prefix of words, then any known word.
        words = norm.split()
        for size in range(len(words) - 1, 0, -1):
            head = " ".join(words[:size])
            if head in self.generic:
                return self.generic[head]
        return norm

    def drug_class(self, ingredient: str) -> str:
        return self.classes.get(ingredient, "")


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    from pharmacy.catalog import catalog_entries

    return Catalog(catalog_entries())


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
        allergen = catalog.ingredient(allergy.substance, allergy.code if allergy.code_system in ("rxnorm", "") else "")
        allergy_class = allergy.drug_class or catalog.drug_class(allergen) or _class_from_substance(allergy.substance)
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


_SUBSTANCE_CLASSES = {
    # Allergy wording that names a class rather than a drug (cross_sensitive takes either).
    "penicillin": "penicillins", "penicillins": "penicillins", "cephalosporin": "cephalosporins",
    "cephalosporins": "cephalosporins", "sulfa": "sulfonamide_antibiotics", "sulfonamide": "sulfonamide_antibiotics",
    "sulfonamides": "sulfonamide_antibiotics", "nsaid": "nsaids", "nsaids": "nsaids", "aspirin": "nsaids",
    "opioid": "opioids", "opioids": "opioids", "codeine": "opioids", "morphine": "opioids",
    "ace inhibitor": "ace_inhibitors", "statin": "statins", "statins": "statins",
}


def _class_from_substance(substance: str) -> str:
    words = normalise_name(substance)
    for size in (2, 1):
        parts = words.split()
        for i in range(len(parts) - size + 1):
            hit = _SUBSTANCE_CLASSES.get(" ".join(parts[i:i + size]))
            if hit:
                return hit
    return ""


def conflict_reason(*, allergen: str, allergy_class: str, substance: str, drug_ingredient: str,
                    drug_class: str) -> str:
    """Why an allergy conflicts with a drug, or "" when it does not."""
    if allergen and drug_ingredient and (allergen == drug_ingredient or allergen in drug_ingredient.split()):
        return f"The patient is allergic to {substance}, the same ingredient"
    if allergy_class and drug_class and cross_sensitive(allergy_class, drug_class):
        label = class_info(drug_class).label if class_info(drug_class) else drug_class
        return f"{substance} allergy is cross-sensitive with {label.lower()} ({drug_ingredient})"
    return ""


def drug_allergy_conflicts(
    *, drug_name: str, drug_class: str, rxcui: str = "", allergies: list[AllergyEntry], catalog: Catalog | None = None
) -> list[tuple[AllergyEntry, str]]:
    """(allergy, reason) for each allergy a new prescription's drug conflicts with."""
    catalog = catalog or default_catalog()
    ingredient = catalog.ingredient(drug_name, rxcui)
    drug_class = drug_class or catalog.drug_class(ingredient)
    out = []
    for allergy in allergies:
        if allergy.negated or (allergy.status or "active").lower() in INACTIVE_EHR_STATUSES:
            continue
        allergen = catalog.ingredient(allergy.substance, allergy.code if allergy.code_system in ("rxnorm", "") else "")
        allergy_class = allergy.drug_class or catalog.drug_class(allergen) or _class_from_substance(allergy.substance)
        why = conflict_reason(allergen=allergen, allergy_class=allergy_class, substance=allergy.substance,
                              drug_ingredient=ingredient, drug_class=drug_class)
        if why:
            out.append((allergy, why))
    return out


Classifier = Callable[[str], str]
