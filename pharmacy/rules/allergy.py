"""The ONE allergy and cross-sensitivity rule of the application (docs/standards.md "Allergy
cross-sensitivity"). Every path asks it: refill eligibility and protocols (``allergy_conflicts``),
the allergy flag on every new prescription and every queue's badges (``AllergyFlag``,
pharmacy/services.py), reconciliation's comparison and PA evidence (``drug_allergy_conflicts`` /
``conflict_reason``). Same answer everywhere; tested on one table of cases
(tests/pharmacy/test_allergy_rule.py).

How it decides
1. Resolve what was recorded — brand, ingredient, class or free text — to a catalog ingredient and
   a class: "Amoxil" → amoxicillin → penicillins (→ beta-lactams); "Penicillin G" → penicillins
   (by its wording); an RxCUI-coded allergy by its code.
2. The same ingredient as the drug → conflict, **high**.
3. Classes cross-sensitive per ``pharmacy.drug_classes.cross_sensitive`` → conflict:
   - penicillin ↔ cephalosporin: low and mostly side-chain driven (2022 AAAAI/ACAAI drug allergy
     practice parameter, Khan DA et al., Ann Allergy Asthma Immunol 2022;129:547) → **low**, and
     **high** when the two share an R1 side chain (amoxicillin/ampicillin ↔ cefadroxil, cephalexin,
     cefaclor, cefprozil);
   - any other shared group (same class, NSAIDs/aspirin, ACE inhibitor angioedema → ARNI) → **high**.
4. "Sulfa" means sulfonamide antibiotics (sulfamethoxazole); no conflict with non-antibiotic
   sulfonamides such as furosemide, hydrochlorothiazide or celecoxib (Strom BL et al., N Engl J Med
   2003;349:1628): they are separate groups in drug_classes.
Inactive, resolved, refuted, entered-in-error and negated allergies never conflict.

Pure: no ORM, no settings; ``allergy_conflicts`` reads attributes of the rows it is given.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pharmacy.drug_classes import THERAPEUTIC_CLASSES, class_info, cross_sensitive

from .drug_names import Catalog, default_catalog, normalise_name

# EHR statuses (FHIR, HL7 v2, C-CDA, lower case) that mean "not active"; compare.py uses them for
# medications as well.
INACTIVE_EHR_STATUSES = {"stopped", "completed", "cancelled", "entered-in-error", "not-taken", "inactive",
                         "discontinued", "on-hold", "resolved", "refuted"}


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


SUBSTANCE_CLASSES = {
    # Allergy wording that names a class rather than a drug (cross_sensitive takes either).
    "penicillin": "penicillins", "penicillins": "penicillins", "cephalosporin": "cephalosporins",
    "cephalosporins": "cephalosporins", "sulfa": "sulfonamide_antibiotics", "sulfonamide": "sulfonamide_antibiotics",
    "sulfonamides": "sulfonamide_antibiotics", "nsaid": "nsaids", "nsaids": "nsaids", "aspirin": "nsaids",
    "opioid": "opioids", "opioids": "opioids", "codeine": "opioids", "morphine": "opioids",
    "ace inhibitor": "ace_inhibitors", "statin": "statins", "statins": "statins",
}


def class_from_substance(substance: str) -> str:
    words = normalise_name(substance)
    for size in (2, 1):
        parts = words.split()
        for i in range(len(parts) - size + 1):
            hit = SUBSTANCE_CLASSES.get(" ".join(parts[i:i + size]))
            if hit:
                return hit
    return ""


def allergen_and_class(allergy: AllergyEntry, catalog: Catalog) -> tuple[str, str]:
    """The allergy's catalog ingredient and its class (row, catalog, or the wording's class)."""
    allergen = catalog.ingredient(allergy.substance, allergy.code if allergy.code_system in ("rxnorm", "") else "")
    return allergen, allergy.drug_class or catalog.drug_class(allergen) or class_from_substance(allergy.substance)


HIGH = "high"
LOW = "low"
# Aminopenicillins and the cephalosporins sharing their R1 side chain (AAAAI/ACAAI 2022).
AMINOPENICILLINS = frozenset({"amoxicillin", "ampicillin"})
SAME_SIDE_CHAIN_CEPHALOSPORINS = frozenset({"cefadroxil", "cephalexin", "cefaclor", "cefprozil"})
BETA_LACTAM_PAIR = frozenset({"penicillin", "cephalosporin"})
KHAN_2022 = "AAAAI/ACAAI drug allergy practice parameter 2022 (Khan DA et al., Ann Allergy Asthma Immunol 2022;129:547)"


def _words(text: str) -> set[str]:
    return set(normalise_name(text).split())


def _therapeutic_class(value: str) -> str:
    """A class slug or an allergy group ("penicillins") → the therapeutic class it names."""
    if value in THERAPEUTIC_CLASSES:
        return value
    return GROUP_THERAPEUTIC_CLASS.get(value, "")


def conflict_assessment(*, allergen: str, allergy_class: str, substance: str, drug_ingredient: str,
                        drug_class: str) -> tuple[str, str]:
    """(why, severity) when an allergy conflicts with a drug, else ("", "")."""
    if allergen and drug_ingredient and (allergen == drug_ingredient or allergen in drug_ingredient.split()):
        return f"The patient is allergic to {substance}, the same ingredient", HIGH
    if allergy_class and drug_class and cross_sensitive(allergy_class, drug_class):
        label = class_info(drug_class).label if class_info(drug_class) else drug_class
        why = f"{substance} allergy is cross-sensitive with {label.lower()} ({drug_ingredient})"
        pair = {_therapeutic_class(allergy_class), drug_class}
        if pair == BETA_LACTAM_PAIR:
            names = _words(allergen) | _words(substance) | _words(drug_ingredient)
            if names & AMINOPENICILLINS and names & SAME_SIDE_CHAIN_CEPHALOSPORINS:
                return f"{why}: same R1 side chain, higher risk ({KHAN_2022})", HIGH
            return f"{why}: penicillin–cephalosporin cross-reactivity is low ({KHAN_2022})", LOW
        return why, HIGH
    return "", ""


def conflict_reason(*, allergen: str, allergy_class: str, substance: str, drug_ingredient: str,
                    drug_class: str) -> str:
    """Why an allergy conflicts with a drug, or "" when it does not (``conflict_assessment``)."""
    return conflict_assessment(allergen=allergen, allergy_class=allergy_class, substance=substance,
                               drug_ingredient=drug_ingredient, drug_class=drug_class)[0]


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
        allergen, allergy_class = allergen_and_class(allergy, catalog)
        why = conflict_reason(allergen=allergen, allergy_class=allergy_class, substance=allergy.substance,
                              drug_ingredient=ingredient, drug_class=drug_class)
        if why:
            out.append((allergy, why))
    return out


# Cross-sensitivity groups (``SUBSTANCE_CLASSES`` values) → the therapeutic class an allergy row records.
GROUP_THERAPEUTIC_CLASS = {"penicillins": "penicillin", "cephalosporins": "cephalosporin",
                           "sulfonamide_antibiotics": "sulfonamide_antibiotic", "nsaids": "nsaid",
                           "opioids": "opioid_analgesic", "statins": "statin"}


def allergy_drug_class(substance: str, catalog: Catalog | None = None) -> str:
    """The therapeutic class to record on a new allergy row for this substance, or "".

    The catalog's class of the substance's ingredient, else the class its wording names."""
    catalog = catalog or default_catalog()
    drug_class = catalog.drug_class(catalog.ingredient(substance))
    if not drug_class:
        drug_class = GROUP_THERAPEUTIC_CLASS.get(class_from_substance(substance), "")
    return drug_class if drug_class in THERAPEUTIC_CLASSES else ""


def allergy_conflicts(drug, allergies: Iterable, catalog: Catalog | None = None) -> list:
    """The allergy rows (``pharmacy.models.Allergy``) a ``Drug`` row conflicts with — the same rule
    as ``drug_allergy_conflicts`` (it was a substring match before issue 13)."""
    from .facts import allergy_entry

    rows = [a for a in allergies if (a.status or "active") == "active"]
    hits = drug_allergy_conflicts(drug_name=drug.name, drug_class=drug.therapeutic_class,
                                  rxcui=getattr(drug, "rxcui", "") or "", allergies=[allergy_entry(a) for a in rows],
                                  catalog=catalog)
    conflicting = {entry.id for entry, _why in hits}
    return [a for a in rows if a.pk in conflicting]
