"""Free-text medication line parser (pharmacy/interop/sig.py). Pure: no database."""
from __future__ import annotations

import time

import pytest

from pharmacy.interop.sig import (
    REVIEW_THRESHOLD,
    normalize_frequency,
    normalize_route,
    parse_medication_list,
    parse_sig,
)

# (line, drug, strength, unit, route, frequency, as_needed) — written by hand, the way a
# pharmacist would read each line.
SIG_CASES = [
    ("METFORMIN 500MG BID", "metformin", "500", "mg", "", "bid", False),
    ("Atorvastatin 40 mg PO QHS PRN", "atorvastatin", "40", "mg", "oral", "qhs", True),
    ("Lipitor 20mg po daily", "atorvastatin", "20", "mg", "oral", "daily", False),
    ("lisinopril 10 mg tab 1 tab by mouth once daily", "lisinopril", "10", "mg", "oral", "daily", False),
    ("insulin glargine 20 units SC QHS", "insulin glargine", "20", "units", "subcutaneous", "qhs", False),
    ("albuterol 90 mcg/actuation 2 puffs inh q4-6h prn wheeze", "albuterol", "90", "mcg/actuation",
     "inhaled", "q4-6h", True),
    ("metoprolol succinate ER 25 mg PO daily", "metoprolol", "25", "mg", "oral", "daily", False),
    ("warfarin 5mg po M/W/F", "warfarin", "5", "mg", "oral", "weekly:mon,wed,fri", False),
    ("Levothyroxine 75mcg every morning", "levothyroxine", "75", "mcg", "", "qam", False),
    ("Amlodipine 5 mg by mouth daily", "amlodipine", "5", "mg", "oral", "daily", False),
    ("Furosemide 40 mg PO BID", "furosemide", "40", "mg", "oral", "bid", False),
    ("Gabapentin 300 mg capsule, take 1 capsule by mouth three times a day", "gabapentin", "300", "mg",
     "oral", "tid", False),
    ("Sertraline 50 mg tablet 1 tablet orally once a day", "sertraline", "50", "mg", "oral", "daily", False),
    ("Omeprazole 20 mg cap 1 cap po qam before breakfast", "omeprazole", "20", "mg", "oral", "qam", False),
    ("Prednisone 10 mg PO daily x 5 days", "prednisone", "10", "mg", "oral", "daily", False),
    ("Acetaminophen 650 mg PO q6h prn pain", "acetaminophen", "650", "mg", "oral", "q6h", True),
    ("Tylenol 500 mg 2 tabs PO every 6 hours as needed for fever", "acetaminophen", "500", "mg", "oral",
     "q6h", True),
    ("Ibuprofen 400 mg PO Q8H PRN", "ibuprofen", "400", "mg", "oral", "q8h", True),
    ("Oxycodone 5 mg PO q4h prn severe pain", "oxycodone", "5", "mg", "oral", "q4h", True),
    ("Hydrocodone-acetaminophen 5-325 mg 1 tab PO q6h prn pain", "hydrocodone/acetaminophen", "5-325",
     "mg", "oral", "q6h", True),
    ("Clopidogrel 75 mg daily", "clopidogrel", "75", "mg", "", "daily", False),
    ("Aspirin 81 mg PO daily", "aspirin", "81", "mg", "oral", "daily", False),
    ("Eliquis 5 mg PO BID", "apixaban", "5", "mg", "oral", "bid", False),
    ("Xarelto 20 mg PO daily with evening meal", "rivaroxaban", "20", "mg", "oral", "daily", False),
    ("Simvastatin 20 mg PO nightly", "simvastatin", "20", "mg", "oral", "qhs", False),
    ("Rosuvastatin 10 mg at bedtime", "rosuvastatin", "10", "mg", "", "qhs", False),
    ("Losartan 50 mg tab daily", "losartan", "50", "mg", "oral", "daily", False),
    ("Hydrochlorothiazide 25 mg PO QAM", "hydrochlorothiazide", "25", "mg", "oral", "qam", False),
    ("HCTZ 12.5 mg daily", "hydrochlorothiazide", "12.5", "mg", "", "daily", False),
    ("Carvedilol 6.25 mg PO twice daily with meals", "carvedilol", "6.25", "mg", "oral", "bid", False),
    ("Spironolactone 25 mg once a day", "spironolactone", "25", "mg", "", "daily", False),
    ("Digoxin 125 mcg PO daily", "digoxin", "125", "mcg", "oral", "daily", False),
    ("Diltiazem ER 180 mg PO daily", "diltiazem", "180", "mg", "oral", "daily", False),
    ("Nitroglycerin 0.4 mg SL q5min prn chest pain", "nitroglycerin", "0.4", "mg", "sublingual", "q5min",
     True),
    ("Glipizide 5 mg PO BID AC", "glipizide", "5", "mg", "oral", "bid", False),
    ("Lantus 30 units subq at bedtime", "insulin glargine", "30", "units", "subcutaneous", "qhs", False),
    ("Humalog sliding scale SC TID AC", "insulin lispro", "", "", "subcutaneous", "tid", False),
    ("Januvia 100 mg PO daily", "sitagliptin", "100", "mg", "oral", "daily", False),
    ("Ozempic 0.5 mg subcutaneous once weekly", "semaglutide", "0.5", "mg", "subcutaneous", "weekly",
     False),
    ("Trulicity 1.5 mg SQ qweek", "dulaglutide", "1.5", "mg", "subcutaneous", "weekly", False),
    ("Alendronate 70 mg PO once a week", "alendronate", "70", "mg", "oral", "weekly", False),
    ("Vitamin D3 1000 units PO daily", "cholecalciferol", "1000", "units", "oral", "daily", False),
    ("Cyanocobalamin 1000 mcg IM monthly", "cyanocobalamin", "1000", "mcg", "intramuscular", "monthly",
     False),
    ("Ferrous sulfate 325 mg PO every other day", "ferrous sulfate", "325", "mg", "oral", "qod", False),
    ("Polyethylene glycol 17 g PO daily", "polyethylene glycol", "17", "g", "oral", "daily", False),
    ("Fluticasone 50 mcg/spray 2 sprays each nostril daily", "fluticasone", "50", "mcg/spray", "nasal",
     "daily", False),
    ("Flonase 2 sprays in each nostril once daily", "fluticasone", "", "", "nasal", "daily", False),
    ("Tiotropium 18 mcg inhale contents of 1 capsule daily", "tiotropium", "18", "mcg", "inhaled", "daily",
     False),
    ("Montelukast 10 mg PO QHS", "montelukast", "10", "mg", "oral", "qhs", False),
    ("Timolol 0.5% 1 drop in both eyes BID", "timolol", "0.5", "%", "ophthalmic", "bid", False),
    ("Latanoprost 0.005% 1 gtt OU qhs", "latanoprost", "0.005", "%", "ophthalmic", "qhs", False),
    ("Ciprofloxacin otic 4 drops in affected ear BID", "ciprofloxacin", "", "", "otic", "bid", False),
    ("Mupirocin 2% ointment apply to affected area TID", "mupirocin", "2", "%", "topical", "tid", False),
    ("Hydrocortisone 1% cream topically BID prn itching", "hydrocortisone", "1", "%", "topical", "bid",
     True),
    ("Fentanyl 25 mcg/hr patch apply 1 patch q72h", "fentanyl", "25", "mcg/hr", "transdermal", "q72h",
     False),
    ("Nicotine 21 mg/24 hr patch transdermal daily", "nicotine", "21", "mg/24hr", "transdermal", "daily",
     False),
    ("Acetaminophen 650 mg PR q6h prn fever", "acetaminophen", "650", "mg", "rectal", "q6h", True),
    ("Promethazine 25 mg IM q6h prn nausea", "promethazine", "25", "mg", "intramuscular", "q6h", True),
    ("Ondansetron 4 mg IV q8h prn nausea", "ondansetron", "4", "mg", "intravenous", "q8h", True),
    ("Ceftriaxone 1 g IV q24h", "ceftriaxone", "1", "g", "intravenous", "daily", False),
    ("Vancomycin 1.25 g IVPB q12h", "vancomycin", "1.25", "g", "intravenous", "q12h", False),
    ("Enoxaparin 40 mg subcutaneously daily", "enoxaparin", "40", "mg", "subcutaneous", "daily", False),
    ("Heparin 5,000 units SC q8h", "heparin", "5000", "units", "subcutaneous", "q8h", False),
    ("Metronidazole 0.75% vaginal gel 1 applicatorful vaginally at bedtime", "metronidazole", "0.75", "%",
     "vaginal", "qhs", False),
    ("Amoxicillin 500 mg PO TID x 10 days", "amoxicillin", "500", "mg", "oral", "tid", False),
    ("Amoxicillin 250 mg/5 mL 10 mL PO BID", "amoxicillin", "250", "mg/5mL", "oral", "bid", False),
    ("Doxycycline 100 mg PO q12h", "doxycycline", "100", "mg", "oral", "q12h", False),
    ("Potassium chloride 20 mEq PO daily", "potassium chloride", "20", "meq", "oral", "daily", False),
    ("Magnesium oxide 400 mg PO BID", "magnesium oxide", "400", "mg", "oral", "bid", False),
    ("Quetiapine 25 mg PO QHS PRN insomnia", "quetiapine", "25", "mg", "oral", "qhs", True),
    ("Lorazepam 0.5 mg PO q8h prn anxiety", "lorazepam", "0.5", "mg", "oral", "q8h", True),
    ("Zolpidem 5 mg PO at bedtime as needed for sleep", "zolpidem", "5", "mg", "oral", "qhs", True),
    ("Finasteride 5mg daily", "finasteride", "5", "mg", "", "daily", False),
    ("Allopurinol 100 mg p.o. b.i.d.", "allopurinol", "100", "mg", "oral", "bid", False),
    ("Colchicine 0.6 mg PO once", "colchicine", "0.6", "mg", "oral", "once", False),
    ("Methotrexate 15 mg PO once weekly on Mondays", "methotrexate", "15", "mg", "oral", "weekly:mon",
     False),
    ("Folic acid 1 mg PO daily", "folic acid", "1", "mg", "oral", "daily", False),
    ("Epinephrine 0.3 mg IM once prn anaphylaxis", "epinephrine", "0.3", "mg", "intramuscular", "once",
     True),
    ("Buprenorphine-naloxone 8-2 mg SL daily", "buprenorphine/naloxone", "8-2", "mg", "sublingual", "daily",
     False),
    ("Nystatin 100,000 units/mL 5 mL swish and swallow QID", "nystatin", "100000", "units/mL", "oral",
     "qid", False),
    ("Clonidine 0.1 mg/24hr patch weekly", "clonidine", "0.1", "mg/24hr", "transdermal", "weekly", False),
    ("Estradiol 0.05 mg/day patch twice weekly", "estradiol", "0.05", "mg/day", "transdermal", "biw",
     False),
    ("Medroxyprogesterone 150 mg IM every 3 months", "medroxyprogesterone", "150", "mg", "intramuscular",
     "q3mo", False),
    ("Testosterone cypionate 200 mg IM every 2 weeks", "testosterone", "200", "mg", "intramuscular", "q2w",
     False),
    ("Coumadin 2.5 mg on Tue/Thu", "warfarin", "2.5", "mg", "", "weekly:tue,thu", False),
    ("Lisinopril 10 mg PO M-F", "lisinopril", "10", "mg", "oral", "weekly:mon,tue,wed,thu,fri", False),
    ("Metformin ER 1000 mg with dinner", "metformin", "1000", "mg", "", "qpm", False),
    ("Levothyroxine 50 mcg PO daily on empty stomach", "levothyroxine", "50", "mcg", "oral", "daily", False),
    ("1. Metformin 500 mg PO BID", "metformin", "500", "mg", "oral", "bid", False),
    ("Take 1 tablet of amlodipine 10 mg by mouth daily", "amlodipine", "10", "mg", "oral", "daily", False),
    ("Sumatriptan 50 mg PO prn migraine", "sumatriptan", "50", "mg", "oral", "prn", True),
    ("Benadryl 25 mg po q6h as needed for itching", "diphenhydramine", "25", "mg", "oral", "q6h", True),
    ("Zofran 4 mg ODT q8h prn", "ondansetron", "4", "mg", "oral", "q8h", True),
    ("Plavix 75mg QD", "clopidogrel", "75", "mg", "", "daily", False),
]


@pytest.mark.parametrize(
    ("line", "drug", "strength", "unit", "route", "frequency", "prn"), SIG_CASES,
    ids=[c[0] for c in SIG_CASES],
)
def test_parse_sig_fields(line, drug, strength, unit, route, frequency, prn):
    parsed = parse_sig(line)
    assert (parsed.drug, parsed.strength, parsed.unit, parsed.route, parsed.frequency, parsed.as_needed) == (
        drug, strength, unit, route, frequency, prn
    )
    assert parsed.text == line
    assert not parsed.needs_review
    assert parsed.confidence["drug"] >= REVIEW_THRESHOLD


def test_enough_hand_written_cases():
    assert len(SIG_CASES) >= 60


DOSE_CASES = [
    ("lisinopril 10 mg tab 1 tab by mouth once daily", "1 tablet"),
    ("albuterol 90 mcg/actuation 2 puffs inh q4-6h prn wheeze", "2 puffs"),
    ("insulin glargine 20 units SC QHS", "20 units"),
    ("Amoxicillin 250 mg/5 mL 10 mL PO BID", "10 mL"),
    ("Tylenol 500 mg 2 tabs PO every 6 hours as needed for fever", "2 tablets"),
    ("Timolol 0.5% 1 drop in both eyes BID", "1 drop"),
    ("Fentanyl 25 mcg/hr patch apply 1 patch q72h", "1 patch"),
    ("Take one tablet by mouth daily", "1 tablet"),
    ("Metoprolol 25 mg take half a tablet twice daily", "1/2 tablet"),
]


@pytest.mark.parametrize(("line", "dose"), DOSE_CASES)
def test_dose(line, dose):
    assert parse_sig(line).dose == dose


def test_drug_text_keeps_salt_and_release_words():
    parsed = parse_sig("metoprolol succinate ER 25 mg PO daily")
    assert parsed.drug == "metoprolol"
    assert parsed.drug_text == "metoprolol succinate ER"


def test_brand_is_mapped_to_generic_and_kept():
    parsed = parse_sig("Lipitor 20mg po daily")
    assert parsed.drug == "atorvastatin"
    assert parsed.brand == "Lipitor"


def test_indication_after_prn():
    assert parse_sig("albuterol 90 mcg/actuation 2 puffs inh q4-6h prn wheeze").indication == "wheeze"
    assert parse_sig("Zolpidem 5 mg PO at bedtime as needed for sleep").indication == "sleep"


@pytest.mark.parametrize(
    ("line", "expected_drug"),
    [
        ("metfromin 500 mg bid", "metformin"),
        ("lisinapril 10 mg daily", "lisinopril"),
        ("atorvastatn 20 mg qhs", "atorvastatin"),
        ("amlodipene 5 mg daily", "amlodipine"),
    ],
)
def test_typos_are_guessed_but_flagged_for_review(line, expected_drug):
    parsed = parse_sig(line)
    assert parsed.drug == expected_drug
    assert parsed.confidence["drug"] < REVIEW_THRESHOLD
    assert parsed.needs_review
    assert parsed.overall_confidence < REVIEW_THRESHOLD


@pytest.mark.parametrize(
    "line", ["Xyzzyquux 10 mg daily", "Take 1 tablet by mouth daily", "", "   ", "as directed"]
)
def test_unknown_or_missing_drug_needs_review(line):
    parsed = parse_sig(line)
    assert parsed.drug == ""
    assert parsed.needs_review
    assert parsed.overall_confidence == 0.0


def test_unknown_drug_keeps_written_name():
    parsed = parse_sig("Xyzzyquux 10 mg daily")
    assert parsed.drug_text == "Xyzzyquux"
    assert (parsed.strength, parsed.unit, parsed.frequency) == ("10", "mg", "daily")


def test_known_drugs_mapping_wins_and_is_fully_confident():
    known = {"ASA": "aspirin", "glucophage xr": "metformin"}
    parsed = parse_sig("ASA 81mg daily", known_drugs=known)
    assert parsed.drug == "aspirin"
    assert parsed.confidence["drug"] == 1.0
    assert parse_sig("Glucophage XR 500 mg with dinner", known_drugs=known).drug == "metformin"


def test_known_drugs_fuzzy_match_is_low_confidence():
    parsed = parse_sig("Zorbexa 50 mg daily", known_drugs={"zorbexal": "zorbexium"})
    assert parsed.drug == "zorbexium"
    assert parsed.needs_review


def test_confidence_fields_and_overall_minimum():
    parsed = parse_sig("Losartan 50 mg tab daily")  # route only implied by "tab"
    assert set(parsed.confidence) == {"drug", "strength", "route", "frequency"}
    assert parsed.confidence["route"] < parsed.confidence["frequency"]
    assert parsed.overall_confidence == min(parsed.confidence.values())
    no_route = parse_sig("Clopidogrel 75 mg daily")
    assert "route" not in no_route.confidence


def test_conflicting_frequencies_lower_confidence():
    parsed = parse_sig("metformin 500 mg bid tid")
    assert parsed.confidence["frequency"] < REVIEW_THRESHOLD


def test_stop_line_sets_status():
    parsed = parse_sig("Stop lisinopril 10 mg daily")
    assert (parsed.drug, parsed.status) == ("lisinopril", "stopped")
    assert parse_sig("Hold metformin 500 mg bid").status == "on-hold"


LIST_CASES = [
    ("METFORMIN 500MG BID, LISINOPRIL 10MG DAILY", ["metformin", "lisinopril"]),
    ("Metformin 500 mg bid; lisinopril 10 mg daily", ["metformin", "lisinopril"]),
    ("metformin 500 mg bid and lisinopril 10 mg daily", ["metformin", "lisinopril"]),
    ("1. Metformin 500 mg BID 2. Lisinopril 10 mg daily 3. Atorvastatin 40 mg qhs",
     ["metformin", "lisinopril", "atorvastatin"]),
    ("1) aspirin 81 mg daily\n2) furosemide 20 mg daily", ["aspirin", "furosemide"]),
    ("Tylenol 500 mg po q6h prn pain, take with food", ["acetaminophen"]),
    ("Heparin 5,000 units SC q8h", ["heparin"]),
    ("Nystatin 100,000 units/mL 5 mL swish and swallow QID", ["nystatin"]),
    ("Discharge Medications:\n- Aspirin 81 mg daily\n- Metoprolol 25 mg BID\n  take with food",
     ["aspirin", "metoprolol"]),
    ("acetaminophen and codeine 300-30 mg 1 tab q4h prn", ["acetaminophen/codeine"]),
    ("Zorbex 50 mg daily, Quuxal 10 mg bid", ["", ""]),
    ("Lasix 40 mg daily\r\nKCl 20 mEq daily\rAspirin 81 mg", ["furosemide", "", "aspirin"]),
    ("", []),
    ("Medications:", []),
]


@pytest.mark.parametrize(("text", "drugs"), LIST_CASES)
def test_parse_medication_list_splits(text, drugs):
    assert [p.drug for p in parse_medication_list(text)] == drugs


def test_list_continuation_line_is_joined():
    items = parse_medication_list("Metoprolol 25 mg BID\n  take with food")
    assert len(items) == 1
    assert "take with food" in items[0].text


def test_list_with_known_drugs():
    known = {"kcl": "potassium chloride", "asa": "aspirin"}
    items = parse_medication_list("KCl 20 mEq daily, ASA 81 mg daily", known_drugs=known)
    assert [(p.drug, p.strength, p.unit) for p in items] == [("potassium chloride", "20", "meq"),
                                                            ("aspirin", "81", "mg")]


@pytest.mark.parametrize(
    ("text", "code"),
    [("BID", "bid"), ("QD", "daily"), ("Q4-6H", "q4-6h"), ("Q24H", "daily"), ("every morning", "qam"),
     ("TID", "tid"), ("QID", "qid"), ("Q6H", "q6h"), ("Q8H", "q8h"), ("Q12H", "q12h"), ("QHS", "qhs"),
     ("QPM", "qpm"), ("QOD", "qod"), ("once a week", "weekly"), ("QW", "weekly"), ("monthly", "monthly"),
     ("PRN", "prn"), ("Every 6 hours", "q6h"), ("Once", "once"), ("", "")],
)
def test_normalize_frequency(text, code):
    assert normalize_frequency(text) == code


@pytest.mark.parametrize(
    ("text", "route"),
    [("PO", "oral"), ("by mouth", "oral"), ("SL", "sublingual"), ("SQ", "subcutaneous"),
     ("subq", "subcutaneous"), ("IM", "intramuscular"), ("IV", "intravenous"), ("INH", "inhaled"),
     ("PR", "rectal"), ("TD", "transdermal"), ("topical", "topical"), ("nasal", "nasal"),
     ("ophthalmic", "ophthalmic"), ("otic", "otic"), ("vaginal", "vaginal"), ("oral inhalation", "inhaled"),
     ("xyz", "")],
)
def test_normalize_route(text, route):
    assert normalize_route(text) == route


def test_parsing_is_fast_after_warm_up():
    parse_sig("metformin 500 mg bid")  # loads the drug dictionary once
    lines = [case[0] for case in SIG_CASES]
    start = time.perf_counter()
    for line in lines:
        parse_sig(line + " ")  # defeat any per-line caching by the caller
    assert time.perf_counter() - start < 5.0
