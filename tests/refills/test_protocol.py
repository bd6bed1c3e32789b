"""Refill protocol engine and the shipped default rules — pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from pharmacy.rules.supply import add_months
from refills.eligibility import EligibilityResult, Reason
from refills.protocol import (
    Check,
    LabFact,
    LabRequirement,
    ProtocolFacts,
    ProtocolRule,
    decide,
    evaluate,
    evaluate_all,
    rule_from_dict,
    select_rule,
)
from refills.protocol_defaults import DEFAULT_PROTOCOL_RULES, build_default_rules, default_rule_rows

TODAY = date(2024, 6, 1)


@pytest.fixture(autouse=True)
def _plain_http():
    """Pure tests: replaces the Django-settings autouse fixture of tests/conftest.py."""


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def eligibility(kind: str = "renewal", *reasons: Reason, earliest: date | None = None) -> EligibilityResult:
    return EligibilityResult(
        eligible=not any(r.blocking for r in reasons),
        kind=kind,
        kind_required="renewal",
        reasons=tuple(reasons),
        earliest_refill_date=earliest,
    )


TOO_SOON_WARNING = Reason("too_soon", "Too soon", False, "payer edit")
TOO_SOON_BLOCKING = Reason("too_soon", "Too soon", True, "payer edit")
DUPLICATE = Reason("duplicate_open_request", "open", True, "one open request")

RULE = ProtocolRule(
    name="ACE inhibitors",
    mode="auto",
    therapeutic_classes=("ace_inhibitor", "arb"),
    required_labs=(
        LabRequirement(("2823-3", "6298-4"), "Potassium", 12),
        LabRequirement(("2160-0", "38483-4"), "Creatinine", 12),
    ),
)
FACTS = ProtocolFacts(
    therapeutic_class="ace_inhibitor",
    drug_name="lisinopril 10 mg tablet",
    dea_schedule="none",
    is_maintenance=True,
    is_high_alert=False,
    species="human",
    last_visit_date=days_ago(90),
    labs=(LabFact("2823-3", days_ago(60)), LabFact("2160-0", days_ago(60))),
    last_protocol_approval_date=days_ago(200),
    new_allergy_conflict=False,
    eligibility=eligibility(),
    therapy_start_date=days_ago(800),
)
ALL_CHECKS = [
    "in_scope",
    "maintenance",
    "not_controlled",
    "not_warfarin",
    "not_high_alert",
    "visit_recent",
    "lab_current:Potassium",
    "lab_current:Creatinine",
    "no_abnormal_since_last_approval",
    "eligible",
    "no_new_allergy_conflict",
    "not_too_soon",
    "therapy_established",
]


def run(rule: dict | None = None, **facts):
    return evaluate(replace(RULE, **(rule or {})), replace(FACTS, **facts), TODAY)


def failed(decision) -> set[str]:
    return {c.name for c in decision.failed_checks}


def test_evaluate_all_checks_pass_approve():
    decision = run()
    assert decision.outcome == "approve"
    assert decision.suggested_action == "approve"
    assert decision.auto_approve
    assert [c.name for c in decision.trace] == ALL_CHECKS
    assert all(c.passed and c.detail for c in decision.trace)


# (id, rule overrides, fact overrides, failed check, suggested action, denial code)
FAILURES = [
    ("not-maintenance", {}, {"is_maintenance": False}, "maintenance", "refer_to_prescriber", None),
    ("controlled-iv", {}, {"dea_schedule": "4"}, "not_controlled", "refer_to_prescriber", None),
    (
        "controlled-ii-even-if-allowed",
        {"allow_controlled": True},
        {"dea_schedule": "2", "eligibility": eligibility("refill")},
        "not_controlled",
        "refer_to_prescriber",
        None,
    ),
    (
        "controlled-renewal-even-if-allowed",
        {"allow_controlled": True},
        {"dea_schedule": "3"},
        "not_controlled",
        "refer_to_prescriber",
        None,
    ),
    ("high-alert", {}, {"is_high_alert": True}, "not_high_alert", "refer_to_prescriber", None),
    (
        "visit-old",
        {},
        {"last_visit_date": add_months(TODAY, -13)},
        "visit_recent",
        "bridge_and_appointment",
        "AM",
    ),
    ("visit-never", {}, {"last_visit_date": None}, "visit_recent", "bridge_and_appointment", "AM"),
    (
        "visit-old-refill",
        {},
        {"last_visit_date": add_months(TODAY, -13), "eligibility": eligibility("refill")},
        "visit_recent",
        "refer_to_prescriber",
        None,
    ),
    (
        "lab-missing",
        {},
        {"labs": (LabFact("2823-3", days_ago(60)),)},
        "lab_current:Creatinine",
        "bridge_and_appointment",
        "AM",
    ),
    (
        "lab-too-old",
        {},
        {"labs": (LabFact("2823-3", days_ago(60)), LabFact("2160-0", add_months(TODAY, -13)))},
        "lab_current:Creatinine",
        "bridge_and_appointment",
        "AM",
    ),
    (
        "lab-in-future-ignored",
        {},
        {"labs": (LabFact("2823-3", days_ago(60)), LabFact("2160-0", TODAY + timedelta(1)))},
        "lab_current:Creatinine",
        "bridge_and_appointment",
        "AM",
    ),
    (
        "abnormal-since-approval",
        {},
        {"labs": (LabFact("2823-3", days_ago(60), abnormal=True), LabFact("2160-0", days_ago(60)))},
        "no_abnormal_since_last_approval",
        "refer_to_prescriber",
        None,
    ),
    (
        "abnormal-no-approval-in-lookback",
        {},
        {"last_protocol_approval_date": None, "labs": FACTS.labs + (LabFact("1742-6", days_ago(300), True),)},
        "no_abnormal_since_last_approval",
        "refer_to_prescriber",
        None,
    ),
    (
        "not-eligible",
        {},
        {"eligibility": eligibility("renewal", DUPLICATE)},
        "eligible",
        "refer_to_prescriber",
        None,
    ),
    ("no-eligibility", {}, {"eligibility": None}, "eligible", "refer_to_prescriber", None),
    ("allergy", {}, {"new_allergy_conflict": True}, "no_new_allergy_conflict", "refer_to_prescriber", None),
    (
        "too-soon-renewal",
        {},
        {"eligibility": eligibility("renewal", TOO_SOON_WARNING, earliest=TODAY + timedelta(5))},
        "not_too_soon",
        "deny",
        "AD",
    ),
    (
        "too-soon-refill",
        {},
        {"eligibility": eligibility("refill", TOO_SOON_BLOCKING)},
        "not_too_soon",
        "deny",
        "AD",
    ),
    (
        "new-therapy",
        {},
        {"therapy_start_date": add_months(TODAY, -5)},
        "therapy_established",
        "refer_to_prescriber",
        None,
    ),
    (
        "therapy-start-unknown",
        {},
        {"therapy_start_date": None},
        "therapy_established",
        "refer_to_prescriber",
        None,
    ),
]


@pytest.mark.parametrize(
    ("rule", "facts", "check", "action", "code"), [pytest.param(*case[1:], id=case[0]) for case in FAILURES]
)
def test_evaluate_one_check_fails_refer_with_suggestion(rule, facts, check, action, code):
    decision = run(rule, **facts)
    assert decision.outcome == "refer"
    assert check in failed(decision)
    assert decision.suggested_action == action
    assert decision.denial_code == code
    assert decision.bridge_days_supply == (30 if action == "bridge_and_appointment" else None)
    assert not decision.auto_approve
    assert len(decision.trace) == len(ALL_CHECKS)


# (id, rule overrides, fact overrides, check that passes)
PASSES = [
    (
        "controlled-refill-allowed",
        {"allow_controlled": True},
        {"dea_schedule": "4", "eligibility": eligibility("refill")},
        "not_controlled",
    ),
    ("high-alert-allowed", {"allow_high_alert": True}, {"is_high_alert": True}, "not_high_alert"),
    ("maintenance-not-required", {"require_maintenance": False}, {"is_maintenance": False}, "maintenance"),
    ("visit-exactly-12-months", {}, {"last_visit_date": add_months(TODAY, -12)}, "visit_recent"),
    (
        "visit-18-months-rule",
        {"max_months_since_visit": 18},
        {"last_visit_date": add_months(TODAY, -17)},
        "visit_recent",
    ),
    (
        "lab-alternative-code",
        {},
        {"labs": (LabFact("6298-4", days_ago(10)), LabFact("38483-4", days_ago(10)))},
        "lab_current:Potassium",
    ),
    (
        "lab-newest-counts",
        {},
        {"labs": FACTS.labs + (LabFact("2823-3", days_ago(900)),)},
        "lab_current:Potassium",
    ),
    (
        "abnormal-before-approval",
        {},
        {"labs": FACTS.labs + (LabFact("2823-3", days_ago(300), True),)},
        "no_abnormal_since_last_approval",
    ),
    (
        "abnormal-on-approval-day",
        {},
        {"labs": FACTS.labs + (LabFact("2823-3", days_ago(200), True),)},
        "no_abnormal_since_last_approval",
    ),
    (
        "abnormal-older-than-lookback",
        {},
        {"last_protocol_approval_date": None, "labs": FACTS.labs + (LabFact("2823-3", days_ago(400), True),)},
        "no_abnormal_since_last_approval",
    ),
    (
        "allergy-check-off",
        {"check_allergy_conflict": False},
        {"new_allergy_conflict": True},
        "no_new_allergy_conflict",
    ),
    (
        "too-soon-check-off",
        {"check_too_soon": False},
        {"eligibility": eligibility("renewal", TOO_SOON_WARNING)},
        "not_too_soon",
    ),
    ("therapy-exactly-6-months", {}, {"therapy_start_date": add_months(TODAY, -6)}, "therapy_established"),
    ("therapy-check-off", {"min_therapy_months": 0}, {"therapy_start_date": None}, "therapy_established"),
]


@pytest.mark.parametrize(("rule", "facts", "check"), [pytest.param(*case[1:], id=case[0]) for case in PASSES])
def test_evaluate_condition_met_or_not_required_check_passes(rule, facts, check):
    decision = run(rule, **facts)
    assert check not in failed(decision)
    assert decision.outcome == "approve"


def test_evaluate_check_not_required_recorded_as_skipped():
    decision = run(
        {
            "require_maintenance": False,
            "check_allergy_conflict": False,
            "check_too_soon": False,
            "min_therapy_months": 0,
        }
    )
    skipped = {c.name for c in decision.trace if c.skipped}
    assert skipped == {"maintenance", "no_new_allergy_conflict", "not_too_soon", "therapy_established"}
    assert [c.name for c in decision.trace] == ALL_CHECKS


def test_evaluate_several_failures_all_in_trace_hard_stop_wins():
    decision = run(is_high_alert=True, last_visit_date=None, new_allergy_conflict=True)
    assert failed(decision) == {"not_high_alert", "visit_recent", "no_new_allergy_conflict"}
    assert decision.suggested_action == "refer_to_prescriber"


@pytest.mark.parametrize(
    ("drug_name", "therapeutic_class"),
    [
        pytest.param("warfarin sodium 5 mg tablet", "anticoagulant", id="warfarin"),
        pytest.param("Coumadin 2 mg", "anticoagulant", id="brand-coumadin"),
        pytest.param("Jantoven 1 mg", "", id="brand-jantoven-no-class"),
        pytest.param("", "anticoagulant", id="anticoagulant-unknown-name"),
    ],
)
def test_evaluate_warfarin_even_with_permissive_rule_refers(drug_name, therapeutic_class):
    permissive = {
        "therapeutic_classes": (),
        "allow_high_alert": True,
        "allow_controlled": True,
        "require_maintenance": False,
    }
    decision = run(permissive, drug_name=drug_name, therapeutic_class=therapeutic_class)
    assert decision.outcome == "refer"
    assert "not_warfarin" in failed(decision)
    assert decision.suggested_action == "refer_to_prescriber"


def test_evaluate_other_anticoagulant_high_alert_unless_rule_allows():
    facts = {"drug_name": "apixaban 5 mg", "therapeutic_class": "anticoagulant"}
    strict = run({"therapeutic_classes": ("anticoagulant",)}, **facts)
    assert failed(strict) == {"not_high_alert"}
    allowed = run({"therapeutic_classes": ("anticoagulant",), "allow_high_alert": True}, **facts)
    assert allowed.outcome == "approve"


@pytest.mark.parametrize("schedule", ["2", "3", "4", "5"])
def test_evaluate_controlled_with_default_rule_refers(schedule):
    decision = run(dea_schedule=schedule)
    assert decision.outcome == "refer"
    assert failed(decision) == {"not_controlled"}


@pytest.mark.parametrize("mode", ["shadow", "assist", "auto"])
def test_evaluate_rule_mode_passed_through(mode):
    approve = run({"mode": mode})
    assert (approve.mode, approve.outcome) == (mode, "approve")
    assert approve.auto_approve is (mode == "auto")
    refer = run({"mode": mode}, is_high_alert=True)
    assert (refer.mode, refer.outcome) == (mode, "refer")
    assert not refer.auto_approve


def test_evaluate_mode_off_not_applicable():
    decision = run({"mode": "off"})
    assert (decision.outcome, decision.mode, decision.suggested_action) == (
        "not_applicable",
        "off",
        "refer_to_prescriber",
    )
    assert len(decision.trace) == len(ALL_CHECKS)


@pytest.mark.parametrize(
    ("facts", "rule"),
    [
        pytest.param({"therapeutic_class": "statin"}, {}, id="other-class"),
        pytest.param({"species": "dog"}, {}, id="animal-on-human-rule"),
        pytest.param({}, {"species": "veterinary"}, id="human-on-vet-rule"),
        pytest.param({}, {"drug_names": ("enalapril",)}, id="other-drug-name"),
    ],
)
def test_evaluate_out_of_scope_not_applicable(facts, rule):
    decision = run(rule, **facts)
    assert decision.outcome == "not_applicable"
    assert "in_scope" in failed(decision)


def test_evaluate_vet_exam_overdue_no_bridge_without_vcpr():
    vet_rule = {"species": "veterinary", "max_months_since_visit": 24}
    decision = run(vet_rule, species="dog", last_visit_date=add_months(TODAY, -13))
    assert failed(decision) == {"visit_recent"}  # 24-month rule capped at 12 months for animals (AVMA)
    assert decision.suggested_action == "refer_to_prescriber"


def test_select_rule_first_enabled_match_wins():
    off = replace(RULE, name="off", mode="off")
    specific = replace(RULE, name="specific", drug_names=("lisinopril",), mode="shadow")
    general = replace(RULE, name="general")
    assert select_rule([off, specific, general], FACTS).name == "specific"
    assert select_rule([off, general, specific], FACTS).name == "general"
    assert select_rule([off], FACTS) is None
    assert select_rule([general], replace(FACTS, therapeutic_class="ppi")) is None


def test_select_rule_drug_name_whole_word_case_insensitive():
    rule = replace(RULE, therapeutic_classes=(), drug_names=("metformin",))
    assert select_rule([rule], replace(FACTS, drug_name="Metformin ER 500 mg")) is rule
    assert select_rule([rule], replace(FACTS, drug_name="metformin/sitagliptin")) is rule
    assert select_rule([rule], replace(FACTS, drug_name="premetforminx")) is None


def test_evaluate_all_one_decision_per_rule():
    rules = [RULE, replace(RULE, name="statins", therapeutic_classes=("statin",)), replace(RULE, mode="off")]
    decisions = evaluate_all(rules, FACTS, TODAY)
    assert [d.outcome for d in decisions] == ["approve", "not_applicable", "not_applicable"]


def test_decide_no_matching_rule_not_applicable():
    decision = decide([RULE], replace(FACTS, therapeutic_class="ppi"), TODAY)
    assert (decision.rule_name, decision.outcome, decision.suggested_action) == (
        None,
        "not_applicable",
        "refer_to_prescriber",
    )
    assert decision.trace == (Check("in_scope", False, "no protocol rule covers this drug"),)
    assert decide([RULE], FACTS, TODAY).outcome == "approve"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"mode": "on"}, id="mode"),
        pytest.param({"species": "dog"}, id="species"),
        pytest.param({"max_months_since_visit": 0}, id="visit-months"),
    ],
)
def test_protocol_rule_invalid_setting_raises(bad):
    with pytest.raises(ValueError):
        replace(RULE, **bad)


def test_lab_requirement_without_codes_raises():
    with pytest.raises(ValueError):
        LabRequirement((), "Nothing", 12)


# ---- shipped defaults ---------------------------------------------------------------------------

DEFAULTS = build_default_rules()
VET_NSAID_FACTS = ProtocolFacts(
    therapeutic_class="veterinary_nsaid",
    drug_name="carprofen 75 mg chewable tablet",
    is_maintenance=True,
    species="dog",
    last_visit_date=days_ago(100),
    labs=(LabFact("1742-6", days_ago(100)), LabFact("3094-0", days_ago(100))),
    last_protocol_approval_date=None,
    eligibility=eligibility(),
    therapy_start_date=days_ago(400),
)


def loinc_check_digit_ok(code: str) -> bool:
    body, check = code.split("-")
    odd, even = body[::-1][0::2], body[::-1][1::2]
    doubled = "".join(str(int(c) * 2) for c in odd)
    return (10 - (sum(map(int, doubled)) + sum(map(int, even))) % 10) % 10 == int(check)


def test_default_rules_ship_in_shadow_with_sources():
    assert len(DEFAULTS) == len(DEFAULT_PROTOCOL_RULES) >= 13
    for rule in DEFAULTS:
        assert rule.mode == "shadow", rule.name
        assert rule.source, rule.name
        assert not rule.allow_controlled and not rule.allow_high_alert
        assert rule.therapeutic_classes, rule.name


def test_default_rules_loinc_codes_valid_check_digit():
    codes = {c for rule in DEFAULTS for lab in rule.required_labs for c in lab.loinc_codes}
    assert codes and all(loinc_check_digit_ok(c) for c in codes), sorted(
        c for c in codes if not loinc_check_digit_ok(c)
    )


def test_default_rule_rows_deep_copy_of_data():
    rows = default_rule_rows()
    rows[0]["required_labs"][0]["loinc_codes"].append("0000-0")
    assert "0000-0" not in DEFAULT_PROTOCOL_RULES[0]["required_labs"][0]["loinc_codes"]
    assert tuple(rule_from_dict(r) for r in default_rule_rows()) == DEFAULTS


def test_rule_from_dict_unknown_key_raises():
    with pytest.raises(TypeError):
        rule_from_dict({"name": "x", "colour": "red"})


@pytest.mark.parametrize(
    ("therapeutic_class", "drug_name", "species", "expected_rule_word", "expected_labs"),
    [
        pytest.param(
            "biguanide",
            "metformin 500 mg",
            "human",
            "Metformin",
            {"Creatinine or eGFR", "HbA1c"},
            id="metformin-before-diabetes",
        ),
        pytest.param("sulfonylurea", "glipizide", "human", "Diabetes", {"HbA1c"}, id="sulfonylurea"),
        pytest.param("ace_inhibitor", "lisinopril", "human", "ACE", {"Potassium", "Creatinine"}, id="ace"),
        pytest.param("arb", "losartan", "human", "ARBs", {"Potassium", "Creatinine"}, id="arb"),
        pytest.param(
            "potassium_sparing_diuretic",
            "spironolactone",
            "human",
            "Spironolactone",
            {"Potassium", "Creatinine"},
            id="spironolactone",
        ),
        pytest.param(
            "thyroid_hormone", "levothyroxine", "human", "Levothyroxine", {"TSH"}, id="levothyroxine"
        ),
        pytest.param("statin", "atorvastatin", "human", "Statins", {"Lipid panel"}, id="statin"),
        pytest.param(
            "antiarrhythmic",
            "amiodarone",
            "human",
            "Amiodarone",
            {"Liver enzymes (ALT/AST)", "TSH"},
            id="amiodarone",
        ),
        pytest.param(
            "antiepileptic",
            "phenytoin ER",
            "human",
            "Phenytoin",
            {"Phenytoin level", "CBC", "CMP"},
            id="phenytoin",
        ),
        pytest.param(
            "mood_stabilizer",
            "divalproex sodium",
            "human",
            "Valproate",
            {"Valproate level", "CBC", "CMP"},
            id="divalproex",
        ),
        pytest.param(
            "mood_stabilizer",
            "lithium carbonate",
            "human",
            "Lithium",
            {"Lithium level", "Creatinine", "TSH"},
            id="lithium",
        ),
        pytest.param("ppi", "omeprazole", "human", "Low-risk", set(), id="ppi"),
        pytest.param(
            "nsaid", "meloxicam", "dog", "Veterinary NSAIDs", {"ALT", "BUN or creatinine"}, id="meloxicam-dog"
        ),
        pytest.param("nsaid", "meloxicam", "human", "Low-risk", set(), id="meloxicam-human"),
        pytest.param(
            "antiepileptic",
            "phenobarbital",
            "dog",
            "Phenobarbital",
            {"Phenobarbital level", "Liver values (ALT/ALP)"},
            id="phenobarbital-dog",
        ),
        pytest.param(
            "insulin",
            "insulin glargine",
            "cat",
            "Insulin (veterinary)",
            {"Fructosamine or glucose curve"},
            id="insulin-cat",
        ),
        pytest.param("insulin", "insulin glargine", "human", "Diabetes", {"HbA1c"}, id="insulin-human"),
    ],
)
def test_select_rule_default_rules_drug_gets_its_monitoring(
    therapeutic_class, drug_name, species, expected_rule_word, expected_labs
):
    facts = ProtocolFacts(therapeutic_class=therapeutic_class, drug_name=drug_name, species=species)
    rule = select_rule(DEFAULTS, facts)
    assert rule is not None and expected_rule_word in rule.name
    assert {lab.name for lab in rule.required_labs} == expected_labs
    if species == "human" and expected_rule_word == "Low-risk":
        assert rule.max_months_since_visit == 18


def test_select_rule_default_rules_warfarin_uncovered():
    facts = ProtocolFacts(therapeutic_class="anticoagulant", drug_name="warfarin", is_maintenance=True)
    assert select_rule(DEFAULTS, facts) is None
    assert decide(DEFAULTS, facts, TODAY).outcome == "not_applicable"


def test_evaluate_vet_nsaid_with_alt_and_bun_approve():
    decision = decide(DEFAULTS, VET_NSAID_FACTS, TODAY)
    assert decision.outcome == "approve"
    assert decision.mode == "shadow"  # shipped default: a person still decides


def test_evaluate_vet_nsaid_without_alt_refer():
    decision = decide(DEFAULTS, replace(VET_NSAID_FACTS, labs=(LabFact("3094-0", days_ago(100)),)), TODAY)
    assert decision.outcome == "refer"
    assert failed(decision) == {"lab_current:ALT"}
    assert decision.suggested_action == "bridge_and_appointment"


def test_evaluate_vet_nsaid_exam_overdue_refer_to_veterinarian():
    decision = decide(DEFAULTS, replace(VET_NSAID_FACTS, last_visit_date=add_months(TODAY, -13)), TODAY)
    assert failed(decision) == {"visit_recent"}
    assert decision.suggested_action == "refer_to_prescriber"


def test_evaluate_vet_phenobarbital_schedule_iv_always_refer():
    facts = replace(
        VET_NSAID_FACTS,
        therapeutic_class="antiepileptic",
        drug_name="phenobarbital 60 mg",
        dea_schedule="4",
        labs=(LabFact("3948-7", days_ago(30)), LabFact("1742-6", days_ago(30))),
    )
    decision = decide(DEFAULTS, facts, TODAY)
    assert decision.outcome == "refer"
    assert failed(decision) == {"not_controlled"}


def test_default_rules_classes_known_to_drug_class_vocabulary():
    drug_classes = pytest.importorskip("pharmacy.drug_classes")
    used = {c for rule in DEFAULTS for c in rule.therapeutic_classes}
    assert used <= set(drug_classes.THERAPEUTIC_CLASSES), sorted(used - set(drug_classes.THERAPEUTIC_CLASSES))
