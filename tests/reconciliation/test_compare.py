"""compare.py: each discrepancy kind and its priority, from plain data (no database)."""
from __future__ import annotations

import pytest

from reconciliation.compare import (
    AllergyEntry,
    EhrMedication,
    PharmacyPrescription,
    compare,
    drug_allergy_conflicts,
    normalise_name,
    normalise_strength,
    priority_for,
)


def rx(id, name, strength="", frequency="daily", **kw):
    return PharmacyPrescription(id=id, name=name, strength=strength, frequency=frequency, **kw)


def med(name, strength="", frequency="daily", **kw):
    return EhrMedication(name=name, text=f"{name} {strength} {frequency}", strength=strength, frequency=frequency, **kw)


def kinds(findings):
    return [(f.kind, f.priority, f.action, f.prescription_id) for f in findings]


def test_identical_lists_give_no_findings():
    findings = compare(ehr_medications=[med("lisinopril", "10 mg"), med("atorvastatin", "40 mg", "qhs")],
                       prescriptions=[rx(1, "lisinopril", "10 mg"), rx(2, "atorvastatin", "40 mg", "qhs")])
    assert findings == []


@pytest.mark.parametrize("ehr, expected_priority", [
    (med("warfarin", "5 mg"), "HIGH"),            # anticoagulant
    (med("insulin glargine", "10 units"), "HIGH"),  # insulin
    (med("levetiracetam", "500 mg", "bid"), "HIGH"),  # antiepileptic
    (med("metoprolol tartrate", "25 mg", "bid"), "HIGH"),  # cardiovascular (beta blocker)
    (med("lisinopril", "10 mg"), "MEDIUM"),        # chronic maintenance
    (med("ibuprofen", "400 mg", "q6h", as_needed=True), "LOW"),  # PRN
])
def test_new_in_ehr_priority_follows_the_class(ehr, expected_priority):
    [finding] = compare(ehr_medications=[ehr], prescriptions=[])
    assert (finding.kind, finding.action, finding.priority) == ("new_in_ehr", "create_pending", expected_priority)
    assert "pending prescription" in finding.suggested_action
    assert finding.ehr["name"] == ehr.name


def test_brand_name_matches_the_generic_prescription():
    assert compare(ehr_medications=[med("Lipitor", "40 mg", "qhs")],
                   prescriptions=[rx(7, "atorvastatin", "40 mg", "qhs")]) == []


def test_code_match_wins_over_a_different_name():
    ehr = med("Coumadin tablet", "5 mg", code="855332", code_system="rxnorm")
    assert compare(ehr_medications=[ehr], prescriptions=[rx(3, "warfarin", "5 mg", rxcui="855332")]) == []


def test_missing_from_ehr_holds_and_stopped_in_ehr_discontinues():
    findings = compare(ehr_medications=[med("warfarin", "5 mg", status="stopped")],
                       prescriptions=[rx(1, "warfarin", "5 mg"), rx(2, "omeprazole", "20 mg")])
    assert kinds(findings) == [("missing_from_ehr", "HIGH", "discontinue", 1), ("missing_from_ehr", "LOW", "hold", 2)]


def test_partial_list_does_not_claim_missing_entries():
    assert compare(ehr_medications=[], prescriptions=[rx(1, "lisinopril", "10 mg")], ehr_list_complete=False) == []


def test_dose_change_and_frequency_change():
    findings = compare(ehr_medications=[med("WARFARIN", "7.5MG"), med("metformin", "500 mg", "bid")],
                       prescriptions=[rx(1, "warfarin", "5 mg"), rx(2, "metformin", "500 mg", "daily")])
    assert kinds(findings) == [("dose_change", "HIGH", "replace_pending", 1),
                               ("frequency_change", "MEDIUM", "replace_pending", 2)]
    assert findings[0].ehr["strength"] == "7.5MG" and findings[0].pharmacy["strength"] == "5 mg"


def test_prn_on_both_sides_is_low_priority():
    findings = compare(ehr_medications=[med("ibuprofen", "800 mg", "tid", as_needed=True)],
                       prescriptions=[rx(4, "ibuprofen", "400 mg", "tid", as_needed=True)])
    assert kinds(findings) == [("dose_change", "LOW", "replace_pending", 4)]


def test_therapeutic_duplication_between_pharmacy_and_new_ehr_entry():
    findings = compare(ehr_medications=[med("atorvastatin", "40 mg"), med("simvastatin", "20 mg")],
                       prescriptions=[rx(5, "atorvastatin", "40 mg")])
    dup = [f for f in findings if f.kind == "therapeutic_duplication"]
    assert [(f.priority, f.action, f.prescription_id) for f in dup] == [("MEDIUM", "hold", 5)]
    assert "simvastatin" in dup[0].summary and "atorvastatin" in dup[0].summary


def test_duplicate_anticoagulants_are_high():
    findings = compare(ehr_medications=[med("warfarin", "5 mg"), med("apixaban", "5 mg", "bid")],
                       prescriptions=[rx(1, "warfarin", "5 mg")])
    dup = [f for f in findings if f.kind == "therapeutic_duplication"]
    assert dup and dup[0].priority == "HIGH"


@pytest.mark.parametrize("substance, drug, drug_class, conflicts", [
    ("Penicillin G", "amoxicillin", "penicillin", True),        # same group
    ("Penicillin", "cephalexin", "cephalosporin", True),        # cross-sensitive beta-lactams
    ("Sulfa drugs", "sulfamethoxazole-trimethoprim", "sulfonamide_antibiotic", True),
    ("Sulfa drugs", "hydrochlorothiazide", "thiazide_diuretic", False),  # Strom 2003: no cross-reactivity
    ("Aspirin", "ibuprofen", "nsaid", True),
    ("Codeine", "oxycodone", "opioid_analgesic", True),
    ("Peanut", "lisinopril", "ace_inhibitor", False),
    ("lisinopril", "lisinopril", "ace_inhibitor", True),        # same ingredient
])
def test_allergy_conflict_with_an_active_prescription(substance, drug, drug_class, conflicts):
    findings = compare(
        ehr_medications=[med(drug, "10 mg")],
        prescriptions=[rx(9, drug, "10 mg", drug_class=drug_class)],
        pharmacy_allergies=[AllergyEntry(substance=substance, source="pharmacy")],
    )
    found = [f for f in findings if f.kind == "allergy_conflict"]
    assert bool(found) is conflicts
    if conflicts:
        assert (found[0].priority, found[0].action, found[0].prescription_id) == ("HIGH", "hold", 9)


def test_new_ehr_allergy_is_proposed_and_conflict_raised():
    findings = compare(ehr_medications=[med("amoxicillin", "500 mg", "tid")],
                       prescriptions=[rx(1, "amoxicillin", "500 mg", "tid")],
                       ehr_allergies=[AllergyEntry(substance="Penicillin G", code="7980", code_system="rxnorm",
                                                   reaction="Hives", severity="severe")],
                       pharmacy_allergies=[])
    assert kinds(findings) == [("allergy_conflict", "HIGH", "hold", 1), ("new_allergy", "HIGH", "add_allergy", None)]


def test_allergy_already_on_file_is_not_proposed_again_and_negated_ignored():
    findings = compare(ehr_medications=[], prescriptions=[],
                       ehr_allergies=[AllergyEntry(substance="PENICILLIN"),
                                      AllergyEntry(substance="Peanuts", negated=True)],
                       pharmacy_allergies=[AllergyEntry(substance="Penicillin", source="pharmacy")])
    assert findings == []


def test_unrecognised_free_text_goes_to_a_person():
    [finding] = compare(ehr_medications=[EhrMedication(text="blue pill for sugar", name="")], prescriptions=[])
    assert finding.kind == "new_in_ehr" and "not recognised" in finding.suggested_action


def test_normalisers():
    assert normalise_name("Metoprolol Succinate ER 25 MG Tablet") == "metoprolol"
    assert normalise_strength("10MG") == normalise_strength("10 mg tablet") == "10 mg"
    assert normalise_strength("7.50 mg") == "7.5 mg"
    assert priority_for("", as_needed=True) == "LOW" and priority_for("anticoagulant", as_needed=True) == "HIGH"


def test_drug_allergy_conflicts_for_a_new_prescription():
    hits = drug_allergy_conflicts(drug_name="cephalexin", drug_class="cephalosporin",
                                  allergies=[AllergyEntry(substance="Penicillin", source="pharmacy"),
                                             AllergyEntry(substance="Latex", source="pharmacy")])
    assert [a.substance for a, _ in hits] == ["Penicillin"]
