"""Allergy and cross-sensitivity conflicts between a drug and a patient's allergies.

Moved here as they were (issue 12) from the two workflow apps that each had their own:

* ``drug_allergy_conflicts`` / ``conflict_reason`` (was ``reconciliation/compare.py``): the
  allergen and the drug are resolved to catalog ingredients (RxCUI first, then the normalised
  name), an allergy's class comes from the allergy row, the catalog or its wording
  (``SUBSTANCE_CLASSES``: "sulfa", "penicillins", …), and classes conflict when
  ``pharmacy.drug_classes.cross_sensitive`` says so. Used for the flag on every new prescription
  (``AllergyFlag``) and the reconciliation comparison.
* ``allergy_conflicts`` (was ``refills/facts.py``): a substring match of the allergy's substance
  and the drug name's first word, or cross-sensitivity of the allergy row's ``drug_class`` with
  the drug's class. Used by the refill protocol's "new allergy conflict" check.

The two answers differ (e.g. "sulfa" against sulfamethoxazole, a brand name against its generic,
an RxCUI-coded allergy); unifying them changes behaviour, so that is left to the ONE
allergy/cross-sensitivity rule engineer `authority` writes here (issue 13). Cross-sensitivity
facts and their citations are in ``pharmacy/drug_classes.py``.

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


def allergy_conflicts(drug, allergies: Iterable) -> list:
    """Active allergies (``pharmacy.models.Allergy`` rows) that name the drug or a cross-sensitive
    class (pharmacy/drug_classes). ``drug`` is a ``Drug`` row (name, therapeutic_class)."""
    name = drug.name.lower()
    hits = []
    for allergy in allergies:
        if allergy.status != "active":
            continue
        substance = allergy.substance.lower()
        if substance and (substance in name or name.split()[0] in substance):
            hits.append(allergy)
        elif allergy.drug_class and drug.therapeutic_class and cross_sensitive(allergy.drug_class,
                                                                                drug.therapeutic_class):
            hits.append(allergy)
    return hits
