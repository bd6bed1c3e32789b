"""The ONE allergy and cross-sensitivity rule (pharmacy/rules/allergy.py), on one table of cases:
the refill path (``allergy_conflicts`` over Allergy rows) and the flag / reconciliation / PA path
(``drug_allergy_conflicts`` over entries) give the same answer for every case."""
from types import SimpleNamespace

import pytest

from pharmacy.rules.allergy import HIGH, LOW, AllergyEntry, allergy_conflicts, drug_allergy_conflicts
from pharmacy.rules.drug_names import default_catalog

# (recorded substance, its class on the row, drug name, drug class, expected severity or None)
CASES = [
    ("Amoxil", "", "amoxicillin", "penicillin", HIGH),  # brand → ingredient
    ("amoxicillin", "", "amoxicillin and clavulanate potassium", "penicillin", HIGH),
    ("Penicillin G", "", "amoxicillin", "penicillin", HIGH),  # wording → penicillins
    ("Penicillin G", "", "penicillin v potassium", "penicillin", HIGH),
    ("penicillin", "", "cefdinir", "cephalosporin", LOW),  # low, side-chain driven (Khan 2022)
    ("amoxicillin", "", "cephalexin", "cephalosporin", HIGH),  # same R1 side chain
    ("Amoxil", "", "cefadroxil", "cephalosporin", HIGH),
    ("amoxicillin", "", "cefuroxime", "cephalosporin", LOW),
    ("sulfa", "", "sulfamethoxazole and trimethoprim", "sulfonamide_antibiotic", HIGH),
    ("sulfa", "", "furosemide", "loop_diuretic", None),  # Strom 2003: no cross-reactivity
    ("sulfa", "", "hydrochlorothiazide", "thiazide_diuretic", None),
    ("Sulfa drugs", "", "celecoxib", "nsaid", None),
    ("aspirin", "", "ibuprofen", "nsaid", HIGH),  # AERD: aspirin ↔ COX-1 NSAIDs
    ("lisinopril (angioedema)", "ace_inhibitor", "sacubitril and valsartan", "arni", HIGH),  # Entresto label
    ("Keflex", "", "cephalexin", "cephalosporin", HIGH),
    ("peanuts", "", "amoxicillin", "penicillin", None),
    ("codeine", "", "atorvastatin", "statin", None),
]


def _entry(substance, drug_class, status="active"):
    return AllergyEntry(substance=substance, drug_class=drug_class, status=status, id=1)


@pytest.mark.parametrize(("substance", "allergy_class", "drug", "drug_class", "expected"), CASES)
def test_one_rule_table(substance, allergy_class, drug, drug_class, expected):
    from pharmacy.rules.allergy import conflict_assessment

    catalog = default_catalog()
    hits = drug_allergy_conflicts(drug_name=drug, drug_class=drug_class, allergies=[_entry(substance, allergy_class)],
                                  catalog=catalog)
    row = SimpleNamespace(pk=1, substance=substance, rxcui="", drug_class=allergy_class, reaction="", severity="",
                          status="active")
    rows = allergy_conflicts(SimpleNamespace(name=drug, therapeutic_class=drug_class, rxcui=""), [row],
                             catalog=catalog)
    assert bool(hits) == (expected is not None) == bool(rows), (hits, rows)
    if expected is not None:
        ingredient = catalog.ingredient(drug)
        allergen = catalog.ingredient(substance)
        from pharmacy.rules.allergy import allergen_and_class

        allergen, klass = allergen_and_class(_entry(substance, allergy_class), catalog)
        _why, severity = conflict_assessment(allergen=allergen, allergy_class=klass, substance=substance,
                                             drug_ingredient=ingredient, drug_class=drug_class)
        assert severity == expected


@pytest.mark.parametrize("status", ["inactive", "resolved", "entered_in_error"])
def test_inactive_allergies_never_conflict(status):
    row = SimpleNamespace(pk=1, substance="Amoxil", rxcui="", drug_class="", reaction="", severity="", status=status)
    assert allergy_conflicts(SimpleNamespace(name="amoxicillin", therapeutic_class="penicillin", rxcui=""),
                             [row]) == []
    assert drug_allergy_conflicts(drug_name="amoxicillin", drug_class="penicillin",
                                  allergies=[_entry("Amoxil", "", status=status.replace("_", "-"))]) == []
