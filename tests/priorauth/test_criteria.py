"""The criteria checker, table-driven, without the database: each kind met, partial, missing."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from priorauth.criteria import (
    CriteriaSpec,
    DiagnosisFact,
    LabFact,
    LabRule,
    RequestFacts,
    StepRule,
    TherapyFact,
    check_criteria,
    spec_errors,
    spec_from_dict,
)

TODAY = date(2026, 11, 30)


def facts(**kw):
    base = dict(quantity=Decimal("4"), days_supply=28, today=TODAY)
    base.update(kw)
    return RequestFacts(**base)


def only(result):
    assert len(result.items) == 1
    return result.items[0]


@pytest.mark.parametrize(
    ("diagnoses", "indication", "expected"),
    [
        ((DiagnosisFact("E11.9", "T2DM", True, "dx:1"),), "", "met"),
        ((DiagnosisFact("E11.65", "T2DM hyperglycemia", False, "dx:2"),), "", "partial"),  # not active
        ((), "E11.9", "partial"),  # only the prescription's indication
        ((DiagnosisFact("I10", "Hypertension", True, "dx:3"),), "", "missing"),
        ((), "", "missing"),
    ],
)
def test_diagnosis_prefix(diagnoses, indication, expected):
    item = only(
        check_criteria(
            CriteriaSpec(diagnosis_prefixes=("E11",)), facts(diagnoses=diagnoses, indication_code=indication)
        )
    )
    assert item.kind == "diagnosis" and item.status == expected
    assert bool(item.ask) == (expected != "met")


def therapy(name, cls, days):
    return TherapyFact(
        name, cls, TODAY - timedelta(days=200), TODAY - timedelta(days=200 - days), days, f"therapy:{name}"
    )


@pytest.mark.parametrize(
    ("therapies", "expected"),
    [
        ((therapy("metformin", "biguanide", 120),), "met"),
        ((therapy("metformin", "biguanide", 30),), "partial"),
        ((therapy("glipizide", "sulfonylurea", 200),), "missing"),
        ((therapy("pioglitazone", "thiazolidinedione", 100),), "met"),  # by class
    ],
)
def test_step_therapy(therapies, expected):
    spec = CriteriaSpec(
        step_therapy=(StepRule("metformin or a TZD", ("metformin",), ("thiazolidinedione",), 90),)
    )
    item = only(check_criteria(spec, facts(therapies=therapies)))
    assert item.status == expected
    if expected == "met":
        assert item.evidence


@pytest.mark.parametrize(
    ("quantity", "days", "expected"),
    [
        ("4", 28, "met"),
        ("8", 56, "partial"),  # same daily rate, one fill above the per-period maximum
        ("8", 28, "missing"),  # double the daily rate
    ],
)
def test_quantity_limit(quantity, days, expected):
    spec = CriteriaSpec(max_quantity=Decimal("4"), quantity_period_days=28)
    assert only(check_criteria(spec, facts(quantity=Decimal(quantity), days_supply=days))).status == expected


@pytest.mark.parametrize(
    ("labs", "expected"),
    [
        ((LabFact("4548-4", "HbA1c", "8.1", TODAY - timedelta(days=30), "lab:1"),), "met"),
        ((LabFact("4548-4", "HbA1c", "8.1", TODAY - timedelta(days=200), "lab:1"),), "partial"),
        ((LabFact("2160-0", "Creatinine", "1.0", TODAY, "lab:2"),), "missing"),
    ],
)
def test_required_lab(labs, expected):
    spec = CriteriaSpec(required_labs=(LabRule("HbA1c", ("4548-4",), 90),))
    assert only(check_criteria(spec, facts(labs=labs))).status == expected


def test_expedited_and_summary():
    spec = CriteriaSpec(
        diagnosis_prefixes=("E11",),
        expedited_diagnosis_prefixes=("E11.0", "E11.1"),
        required_labs=(LabRule("HbA1c", ("4548-4",), 90),),
    )
    result = check_criteria(
        spec, facts(diagnoses=(DiagnosisFact("E11.10", "T2DM with ketoacidosis", True, "dx:1"),))
    )
    assert result.expedited and "E11.10" in result.expedited_reason
    assert [i.status for i in result.items] == ["met", "missing"]
    assert not result.all_met and result.asks == ["Ask for a recent HbA1c result."]
    assert result.as_dict()["counts"] == {"met": 1, "partial": 0, "missing": 1}


def test_no_criteria_is_trivially_met():
    assert check_criteria(CriteriaSpec(), facts()).all_met


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"diagnosis_prefixes": "E11"}, "diagnosis_prefixes"),
        ({"step_therapy": [{"label": "x"}]}, "step_therapy"),
        ({"step_therapy": [{"drugs": ["metformin"], "min_days": -1}]}, "step_therapy"),
        ({"required_labs": [{"name": "A1c"}]}, "required_labs"),
        ({"max_quantity": "lots"}, "max_quantity"),
    ],
)
def test_spec_errors_name_the_field(data, field):
    assert field in spec_errors(data)


def test_spec_from_dict_round_trip():
    spec = spec_from_dict(
        {
            "diagnosis_prefixes": ["E11"],
            "step_therapy": [{"drugs": ["metformin"], "min_days": 90}],
            "max_quantity": "4",
            "quantity_period_days": 28,
            "required_labs": [{"name": "HbA1c", "loinc_codes": ["4548-4"], "max_age_days": 90}],
        }
    )
    assert spec.step_therapy[0].label == "metformin" and spec.max_quantity == Decimal("4")
    assert spec.required_labs[0].max_age_days == 90
