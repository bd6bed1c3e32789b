"""The high-priority drug–drug interaction rule (pharmacy/rules/interactions.py) on its own,
table-driven, against the shipped data (pharmacy/data/onc_high_priority_ddi.json): the ONC list's 15
pairs (Phansalkar et al., JAMIA 2012, members from dbmi-pitt/public-PDDI-analysis) and warfarin +
NSAIDs (HL7 FHIR PDDI CDS IG)."""
import json

import pytest

from pharmacy.rules.interactions import DATA, ingredient_words, interactions, onc_high_priority

RAW = json.loads(DATA.read_text(encoding="utf-8"))

# One pair a row: (pair id, a name for an object-side member, a name for a precipitant-side member),
# written as prescriptions are: brand names (resolved by the catalog, or by the source's brand list
# for the QT pair), salts, strengths and dose forms (dropped by the core normaliser).
PAIRS = [
    (1, "Adderall XR 20 mg capsule", "phenelzine sulfate 15 mg tablet"),
    (2, "atazanavir sulfate 300 mg capsule", "Prilosec 20 mg DR capsule"),
    (3, "Uloric 40 mg tablet", "Imuran 50 mg tablet"),
    (4, "Zoloft 50 mg tablet", "tranylcypromine sulfate 10 mg tablet"),
    (5, "irinotecan hydrochloride 100 mg/5 mL injection", "Biaxin 500 mg tablet"),
    (6, "Ultram 50 mg tablet", "selegiline hydrochloride 5 mg capsule"),
    (7, "Pamelor 25 mg capsule", "isocarboxazid 10 mg tablet"),
    (8, "Lexapro 10 mg tablet", "Zithromax 250 mg tablet"),
    (9, "ramelteon 8 mg tablet", "Cipro 500 mg tablet"),
    (10, "ritonavir 100 mg tablet", "Tegretol 200 mg tablet"),
    (11, "Zocor 40 mg tablet", "Cardizem CD 180 mg capsule"),
    (12, "ergotamine tartrate 1 mg tablet", "ketoconazole 200 mg tablet"),
    (13, "Zanaflex 4 mg tablet", "Pacerone 200 mg tablet"),
    (14, "tranylcypromine sulfate 10 mg tablet", "procarbazine hydrochloride 50 mg capsule"),
    (15, "Imitrex 50 mg tablet", "phenelzine sulfate 15 mg tablet"),
    ("warfarin-nsaids", "Coumadin 5 mg tablet", "Motrin 800 mg tablet"),
    ("warfarin-nsaids", "warfarin sodium 5 mg tablet", "naproxen sodium 550 mg tablet"),
]


@pytest.mark.parametrize(("pair", "a", "b"), PAIRS)
def test_each_pair_is_found_in_both_orders_by_brand_and_salt_names(pair, a, b):
    for drug, other in ((a, b), (b, a)):
        found = interactions(drug, ["lisinopril 10 mg tablet", other])
        assert [f.pair_id for f in found] == [pair], (drug, other)
        assert found[0].drug == drug and found[0].other == other and found[0].severity == "high"
        assert ("Phansalkar" if isinstance(pair, int) else "PDDI CDS") in found[0].citation


def _all_pairs():
    return RAW["pairs"] + RAW["other_high_severity"]["pairs"]


@pytest.mark.parametrize("raw", _all_pairs(), ids=lambda raw: str(raw["id"]))
def test_every_listed_member_is_found_against_the_other_side(raw):
    """Every member the data lists forms its pair with a member of the other side, both orders."""
    obj, pre = raw["object"]["ingredients"], raw["precipitant"]["ingredients"]
    assert obj and pre, "a pair without members matches nothing"
    for x in obj:
        y = next(m for m in pre if m != x)
        assert raw["id"] in [f.pair_id for f in interactions(x, [y])], (x, y)
        assert raw["id"] in [f.pair_id for f in interactions(y, [x])], (y, x)


NOT_FLAGGED = [
    ("atazanavir", ["famotidine"]),  # H2 blockers were removed from the pair by the panel
    ("sertraline", ["fluoxetine"]),  # duplication of class, not an interaction pair
    ("warfarin", ["acetaminophen 500 mg tablet"]),  # the IG's suggested substitute
    ("Zocor 20 mg", ["Lipitor"]),
    ("pravastatin 40 mg tablet", ["clarithromycin"]),  # only simvastatin and lovastatin are listed
    ("simvastatin", ["amlodipine"]),
    ("Lexapro", ["Lexapro 20 mg"]),  # the same drug twice is not a QT pair
    ("tizanidine", ["famotidine"]),
    ("lisinopril", []),
    ("hydrochlorothiazide", ["furosemide", "metformin", "levothyroxine"]),
]


@pytest.mark.parametrize(("drug", "others"), NOT_FLAGGED)
def test_non_members_are_not_flagged(drug, others):
    assert interactions(drug, others) == []
    for other in others:
        assert interactions(other, [drug]) == []


def test_names_resolve_through_the_core_normaliser_and_the_sources_brand_names():
    assert {"simvastatin"} <= ingredient_words("Zocor 40 mg tablet")
    assert {"omeprazole"} <= ingredient_words("omeprazole magnesium 20 mg DR capsule")
    assert {"erythromycin"} <= ingredient_words("Ery-Tab 250 mg")  # CredibleMeds' brand column
    assert "warfarin" in ingredient_words("Jantoven")


def test_the_data_is_the_papers_fifteen_pairs_with_members_and_sources():
    assert [p["id"] for p in RAW["pairs"]] == list(range(1, 16))
    assert [p["paper_row"] for p in RAW["pairs"]] == list(range(1, 16))
    assert "J Am Med Inform Assoc 2012;19(5):735-743" in RAW["citation"]
    assert any("PMC3422823" in where for where in RAW["found_at"])
    for p in RAW["pairs"]:
        assert "dbmi-pitt/public-PDDI-analysis" in p["source"] and "ONC High Priority List.xls" in p["source"]
        assert p["object"]["ingredients"] and p["precipitant"]["ingredients"]
    qt = RAW["pairs"][7]
    assert "CredibleMeds" in qt["object"]["source"] and len(qt["object"]["ingredients"]) == 40
    table = onc_high_priority()
    assert len(table.pairs) == 16 and table.citation == RAW["citation"]


def test_warfarin_nsaids_is_kept_apart_from_the_onc_pairs_and_cited_to_the_hl7_guide():
    labels = {(p["object"]["label"], p["precipitant"]["label"]) for p in RAW["pairs"]}
    assert not any("warfarin" in a.lower() or "warfarin" in b.lower() for a, b in labels)
    other = RAW["other_high_severity"]
    assert "PDDI" in other["citation"] and "HL7" in other["citation"]
    assert other["pairs"][0]["object"]["ingredients"] == ["warfarin"]
