"""Checks of the curated drug catalog and the therapeutic class vocabulary (no database)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from pharmacy import drug_classes as dc

ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = ROOT / "pharmacy" / "data" / "drug_catalog.json"
FIELDS = {
    "name",
    "brand_names",
    "strength",
    "dose_form",
    "route",
    "ndc",
    "rxcui",
    "dea_schedule",
    "therapeutic_class",
    "is_maintenance",
    "is_high_alert",
    "is_urgent",
    "species",
}

# Federal schedules written from 21 CFR 1308.12-1308.15 (eCFR) and the DEA "Controlled Substance
# Schedules" list. Codeine combinations with <= 90 mg per dosage unit are III (1308.13(e));
# cough preparations with <= 200 mg codeine per 100 mL and diphenoxylate <= 2.5 mg with atropine
# are V (1308.15(c)). Gabapentin is not federally controlled.
EXPECTED_SCHEDULES = {
    "oxycodone": "2",
    "oxycodone and acetaminophen": "2",
    "hydrocodone and acetaminophen": "2",
    "morphine sulfate": "2",
    "fentanyl": "2",
    "hydromorphone": "2",
    "methadone": "2",
    "tapentadol": "2",
    "methylphenidate": "2",
    "dextroamphetamine and amphetamine": "2",
    "lisdexamfetamine": "2",
    "buprenorphine and naloxone": "3",
    "testosterone cypionate": "3",
    "testosterone": "3",
    "acetaminophen and codeine": "3",
    "alprazolam": "4",
    "clonazepam": "4",
    "lorazepam": "4",
    "diazepam": "4",
    "temazepam": "4",
    "zolpidem": "4",
    "eszopiclone": "4",
    "tramadol": "4",
    "carisoprodol": "4",
    "phenobarbital": "4",
    "modafinil": "4",
    "phentermine": "4",
    "pregabalin": "5",
    "lacosamide": "5",
    "promethazine and codeine": "5",
    "diphenoxylate and atropine": "5",
    "gabapentin": "none",
}

REQUIRED_CLASSES = """
ace_inhibitor arb beta_blocker calcium_channel_blocker thiazide_diuretic loop_diuretic
potassium_sparing_diuretic statin anticoagulant antiplatelet antiarrhythmic cardiac_glycoside nitrate
insulin biguanide sulfonylurea dpp4_inhibitor sglt2_inhibitor glp1_agonist thyroid_hormone antithyroid
antiepileptic benzodiazepine opioid_analgesic nsaid ssri snri tricyclic_antidepressant
other_antidepressant antipsychotic mood_stabilizer stimulant_adhd sedative_hypnotic muscle_relaxant ppi
h2_blocker antiemetic penicillin cephalosporin macrolide fluoroquinolone tetracycline
sulfonamide_antibiotic antifungal antiviral_herpes antiretroviral corticosteroid_oral
inhaled_corticosteroid bronchodilator_saba bronchodilator_laba leukotriene_modifier antihistamine
bisphosphonate xanthine_oxidase_inhibitor gout_other bph_alpha_blocker 5ari overactive_bladder estrogen
contraceptive testosterone dmard immunosuppressant migraine_triptan dementia parkinson smoking_cessation
antianginal_other alpha2_agonist vitamin_supplement veterinary_nsaid veterinary_antiparasitic
veterinary_other other
""".split()


@pytest.fixture(autouse=True)
def _plain_http():
    """Shadow tests/conftest.py's autouse settings fixture: these tests need no Django."""
    yield


@pytest.fixture(scope="module")
def catalog() -> dict:
    with CATALOG_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def drugs(catalog) -> list[dict]:
    return catalog["drugs"]


def _in_class_tree(row: dict, slug: str) -> bool:
    return slug in dc.ancestors(row["therapeutic_class"])


# ---------------------------------------------------------------- catalog shape


def test_top_level_shape(catalog):
    assert set(catalog) == {"source", "generated", "drugs"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", catalog["generated"])
    for needle in ("1308", "ISMP", "RxNorm", "NDC"):
        assert needle in catalog["source"]


def test_rows_have_exact_fields_and_types(drugs):
    for row in drugs:
        assert set(row) == FIELDS, row.get("name")
        assert row["name"] == row["name"].strip().lower() and row["name"], row
        assert isinstance(row["brand_names"], list)
        assert all(isinstance(b, str) and b for b in row["brand_names"])
        for key in ("strength", "dose_form", "route"):
            assert isinstance(row[key], str) and row[key].strip(), (row["name"], key)
        for key in ("is_maintenance", "is_high_alert", "is_urgent"):
            assert isinstance(row[key], bool), (row["name"], key)
        assert row["species"] in {"human", "veterinary"}


def test_counts(drugs):
    human = [d for d in drugs if d["species"] == "human"]
    vet = [d for d in drugs if d["species"] == "veterinary"]
    assert len(human) >= 150
    assert len(vet) >= 10


def test_several_strengths_for_top_drugs(drugs):
    strengths: dict[str, set[str]] = {}
    for row in drugs:
        if row["species"] == "human":
            strengths.setdefault(row["name"], set()).add(row["strength"])
    assert {"10 mg", "20 mg"} <= strengths["lisinopril"]
    assert {"20 mg", "40 mg"} <= strengths["atorvastatin"]
    assert {"500 mg", "1000 mg"} <= strengths["metformin"]
    assert {"50 mcg", "75 mcg", "100 mcg"} <= strengths["levothyroxine"]


def test_no_duplicate_products(drugs):
    keys = [(d["name"], d["strength"], d["dose_form"]) for d in drugs]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes


def test_required_veterinary_products(drugs):
    vet_names = {d["name"] for d in drugs if d["species"] == "veterinary"}
    for name in (
        "carprofen",
        "meloxicam",
        "phenobarbital",
        "gabapentin",
        "oclacitinib",
        "prednisolone",
        "methimazole",
        "enalapril",
        "pimobendan",
        "porcine insulin zinc suspension",
        "cephalexin",
        "trazodone",
    ):
        assert name in vet_names, name


# ---------------------------------------------------------------- classes


def test_every_class_slug_exists(drugs):
    unknown = {d["therapeutic_class"] for d in drugs} - set(dc.THERAPEUTIC_CLASSES)
    assert not unknown


def test_required_class_slugs_present():
    missing = set(REQUIRED_CLASSES) - set(dc.THERAPEUTIC_CLASSES)
    assert not missing


def test_class_records_are_consistent():
    for slug, info in dc.THERAPEUTIC_CLASSES.items():
        assert info.slug == slug
        assert info.reconciliation_priority in {"HIGH", "MEDIUM", "LOW"}
        assert info.parent is None or info.parent in dc.THERAPEUTIC_CLASSES
        assert all(g in dc.ALLERGY_GROUPS for g in info.allergy_groups)


def test_drug_classes_module_is_pure_python():
    tree = ast.parse(Path(dc.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "django" not in imported


def test_class_helpers():
    assert dc.class_info("insulin").high_alert is True
    assert dc.class_info("Beta-Blocker") is dc.THERAPEUTIC_CLASSES["beta_blocker"]
    assert dc.class_info("no_such_class") is None
    assert dc.is_urgent("anticoagulant") and dc.is_urgent("antiepileptic")
    assert not dc.is_urgent("thyroid_hormone")
    assert not dc.is_urgent("no_such_class")
    assert "beta_lactams" in dc.allergy_groups_for("penicillin")
    assert dc.allergy_groups_for("no_such_class") == ()
    assert dc.ancestors("salicylate") == ("salicylate", "antiplatelet")


# ---------------------------------------------------------------- controlled substances


def test_schedules_valid(drugs):
    for row in drugs:
        assert row["dea_schedule"] in {"none", "2", "3", "4", "5"}, row["name"]


@pytest.mark.parametrize(("name", "schedule"), sorted(EXPECTED_SCHEDULES.items()))
def test_named_controlled_drugs(drugs, name, schedule):
    rows = [d for d in drugs if d["name"] == name]
    assert rows, f"{name} missing from the catalog"
    for row in rows:
        assert row["dea_schedule"] == schedule, (name, row["strength"])


def test_every_opioid_and_benzodiazepine_is_controlled(drugs):
    for row in drugs:
        groups = dc.allergy_groups_for(row["therapeutic_class"])
        if "opioids" in groups or "benzodiazepines" in groups:
            assert row["dea_schedule"] != "none", row["name"]


def test_schedule_ii_stimulants_and_opioids(drugs):
    for row in drugs:
        if row["therapeutic_class"] == "stimulant_adhd":
            assert row["dea_schedule"] == "2", row["name"]


# ---------------------------------------------------------------- urgency / high-alert


def test_urgent_classes(drugs):
    for row in drugs:
        for slug in ("insulin", "anticoagulant", "antiepileptic", "antiarrhythmic", "cardiac_glycoside"):
            if _in_class_tree(row, slug):
                assert row["is_urgent"], row["name"]
        if row["name"] in {"sacubitril and valsartan", "nitroglycerin"}:
            assert row["is_urgent"], row["name"]
        if row["therapeutic_class"] == "beta_blocker":
            assert row["is_urgent"], row["name"]


def test_high_alert_per_ismp(drugs):
    for row in drugs:
        cls = row["therapeutic_class"]
        if cls in {"insulin", "anticoagulant", "sulfonylurea", "immunosuppressant"}:
            assert row["is_high_alert"], row["name"]
        if "opioids" in dc.allergy_groups_for(cls):
            assert row["is_high_alert"], row["name"]
        if any(ing in row["name"] for ing in dc.ISMP_SPECIFIC_HIGH_ALERT):
            assert row["is_high_alert"], row["name"]
    by_name = {d["name"]: d for d in drugs if d["species"] == "human"}
    assert by_name["methotrexate"]["is_high_alert"]
    assert not by_name["levothyroxine"]["is_high_alert"]
    assert not by_name["lisinopril"]["is_high_alert"]


def test_acute_products_are_not_maintenance(drugs):
    acute_classes = {
        "penicillin",
        "cephalosporin",
        "macrolide",
        "fluoroquinolone",
        "tetracycline",
        "sulfonamide_antibiotic",
        "lincosamide",
        "nitroimidazole",
        "urinary_antiinfective",
        "antiviral_influenza",
        "migraine_triptan",
    }
    for row in drugs:
        if row["therapeutic_class"] in acute_classes:
            assert not row["is_maintenance"], row["name"]
    by_key = {(d["name"], d["strength"]): d for d in drugs}
    assert not by_key[("ondansetron", "4 mg")]["is_maintenance"]
    assert not by_key[("valacyclovir", "1 g")]["is_maintenance"]
    burst = by_key[("prednisone", "20 mg")]
    assert not burst["is_maintenance"] and not burst["is_urgent"]
    assert by_key[("lisinopril", "10 mg")]["is_maintenance"]


# ---------------------------------------------------------------- identifiers


def test_ndc_format_and_unique(drugs):
    ndcs = [d["ndc"] for d in drugs if d["ndc"]]
    for ndc in ndcs:
        assert re.fullmatch(r"\d{11}", ndc), ndc
    assert len(ndcs) == len(set(ndcs))


def test_rxcui_format_and_unique(drugs):
    cuis = [d["rxcui"] for d in drugs if d["rxcui"]]
    for cui in cuis:
        assert re.fullmatch(r"[1-9]\d{0,8}", cui), cui
    assert len(cuis) == len(set(cuis))


def test_known_rxcuis(drugs):
    by_key = {(d["name"], d["strength"], d["dose_form"]): d["rxcui"] for d in drugs}
    # RxNorm SCDs as listed in VSAC eCQM value sets.
    assert by_key[("lisinopril", "10 mg", "tablet")] == "314076"
    assert by_key[("lisinopril", "20 mg", "tablet")] == "314077"
    assert by_key[("atorvastatin", "20 mg", "tablet")] == "617310"
    assert by_key[("atorvastatin", "40 mg", "tablet")] == "617311"
    assert by_key[("warfarin", "5 mg", "tablet")] == "855332"


# ---------------------------------------------------------------- allergy cross-sensitivity


def test_cross_sensitive_beta_lactams():
    assert dc.cross_sensitive("penicillin", "cephalosporin")
    assert dc.cross_sensitive(["penicillins"], "cephalosporin")
    assert dc.cross_sensitive("beta_lactams", "penicillin")
    assert not dc.cross_sensitive("penicillin", "macrolide")
    assert not dc.cross_sensitive("penicillins", "fluoroquinolone")


def test_cross_sensitive_sulfonamides(drugs):
    smx_tmp = next(d for d in drugs if d["name"] == "sulfamethoxazole and trimethoprim")
    assert dc.cross_sensitive("sulfonamide_antibiotic", smx_tmp["therapeutic_class"])
    assert dc.cross_sensitive(["sulfonamide_antibiotics"], smx_tmp["therapeutic_class"])
    # Strom et al. 2003: no meaningful cross-reactivity with non-antibiotic sulfonamides.
    assert not dc.cross_sensitive("sulfonamide_antibiotics", "thiazide_diuretic")
    assert not dc.cross_sensitive("sulfonamide_antibiotic", "sulfonylurea")


def test_cross_sensitive_other_groups():
    assert dc.cross_sensitive("salicylate", "nsaid")  # aspirin allergy vs ibuprofen
    assert dc.cross_sensitive("nsaids", "salicylate")
    assert dc.cross_sensitive("ace_inhibitor", "arni")  # Entresto after ACEi angioedema
    assert dc.cross_sensitive("opioid_analgesic", "opioid_use_disorder")
    assert dc.cross_sensitive("ppi", "ppi")  # same class
    assert not dc.cross_sensitive("statin", "ppi")
    assert not dc.cross_sensitive("penicillin", "no_such_class")
    assert not dc.cross_sensitive("unknown allergy", "penicillin")
    assert not dc.cross_sensitive([], "penicillin")
