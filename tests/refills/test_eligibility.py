"""Refill / renewal eligibility — every reason triggered and not triggered; pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from pharmacy.rules.supply import FillRecord, add_months
from refills.eligibility import (
    REASON_CODES,
    EligibilityPolicy,
    PatientFacts,
    PrescriptionFacts,
    check_eligibility,
    compute_run_out_and_kind,
    valid_until,
)

TODAY = date(2024, 6, 1)


@pytest.fixture(autouse=True)
def _plain_http():
    """Pure tests: replaces the Django-settings autouse fixture of tests/conftest.py."""


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


BASE_RX = PrescriptionFacts(
    status="active",
    dea_schedule="none",
    refills_authorized=5,
    refills_remaining=3,
    written_date=date(2024, 1, 15),
    expiration_date=None,
    days_supply=30,
    last_fill=FillRecord(days_ago(25), 30),
    fills=(FillRecord(days_ago(55), 30),),
)
BASE_PATIENT = PatientFacts(
    consent_to_messages=True,
    contact_preference="sms",
    has_phone=True,
    has_email=True,
    has_coverage=True,
    last_visit_date=date(2024, 3, 1),
    species="human",
)


def check(
    rx: dict | None = None,
    patient: dict | None = None,
    *,
    open_request: bool = False,
    kind: str = "refill",
    policy: EligibilityPolicy | None = None,
    today: date = TODAY,
):
    return check_eligibility(
        prescription=replace(BASE_RX, **(rx or {})),
        patient=replace(BASE_PATIENT, **(patient or {})),
        has_open_request=open_request,
        today=today,
        policy=policy or EligibilityPolicy(),
        kind=kind,
    )


def reason(result, code):
    matches = [r for r in result.reasons if r.code == code]
    assert len(matches) == 1, f"{code} not in {result.codes}"
    return matches[0]


def test_check_eligibility_clean_refill_eligible_without_reasons():
    result = check()
    assert result.eligible
    assert result.kind_required == "refill"
    assert result.reasons == ()
    assert result.run_out_date == days_ago(25) + timedelta(days=30)


# (id, rx overrides, patient overrides, open request, policy, code, blocks a refill, blocks a renewal,
#  kind required)
TRIGGERED = [
    ("on-hold", {"status": "on_hold"}, {}, False, None, "not_active", True, True, "refill"),
    ("discontinued", {"status": "discontinued"}, {}, False, None, "not_active", True, True, "refill"),
    ("status-expired", {"status": "expired"}, {}, False, None, "not_active", True, False, "renewal"),
    ("status-completed", {"status": "completed"}, {}, False, None, "not_active", True, False, "renewal"),
    ("no-refills", {"refills_remaining": 0}, {}, False, None, "no_refills_remaining", True, False, "renewal"),
    ("expired-date", {"expiration_date": days_ago(1)}, {}, False, None, "expired", True, False, "renewal"),
    (
        "expired-default-365",
        {"written_date": days_ago(366)},
        {},
        False,
        None,
        "expired",
        True,
        False,
        "renewal",
    ),
    (
        "expired-policy-180",
        {"written_date": days_ago(181)},
        {},
        False,
        EligibilityPolicy(non_controlled_expiry_days=180),
        "expired",
        True,
        False,
        "renewal",
    ),
    (
        "expires-before-refill-due",
        {"expiration_date": TODAY + timedelta(days=3), "last_fill": FillRecord(days_ago(2), 30), "fills": ()},
        {},
        False,
        None,
        "expires_before_run_out",
        True,
        False,
        "renewal",
    ),
    (
        "expires-before-run-out-refill-possible",
        {"expiration_date": TODAY + timedelta(days=2)},
        {},
        False,
        None,
        "expires_before_run_out",
        False,
        False,
        "renewal",  # issue 4: expiring before run-out asks for a renewal, the refill stays allowed
    ),
    (
        "schedule-ii",
        {"dea_schedule": "2", "refills_authorized": 0, "refills_remaining": 0},
        {},
        False,
        None,
        "schedule_ii_no_refills",
        True,
        False,
        "renewal",
    ),
    (
        "schedule-iii-six-months",
        {"dea_schedule": "3", "written_date": add_months(TODAY, -6) - timedelta(days=1)},
        {},
        False,
        None,
        "schedule_iii_iv_six_months",
        True,
        False,
        "renewal",
    ),
    (
        "schedule-iv-six-months",
        {"dea_schedule": "4", "written_date": add_months(TODAY, -7)},
        {},
        False,
        None,
        "schedule_iii_iv_six_months",
        True,
        False,
        "renewal",
    ),
    (
        "schedule-iv-six-refills",
        {"dea_schedule": "4", "refills_authorized": 6, "written_date": days_ago(60)},
        {},
        False,
        None,
        "schedule_iii_iv_max_refills",
        True,
        False,
        "renewal",
    ),
    (
        "schedule-iii-five-dispensed",
        {
            "dea_schedule": "3",
            "written_date": days_ago(150),
            "fills": tuple(FillRecord(days_ago(25 + 20 * i), 20) for i in range(1, 6)),
        },
        {},
        False,
        None,
        "schedule_iii_iv_max_refills",
        True,
        False,
        "renewal",
    ),
    (
        "too-soon",
        {"last_fill": FillRecord(days_ago(10), 30)},
        {},
        False,
        None,
        "too_soon",
        True,
        False,
        "refill",
    ),
    ("duplicate", {}, {}, True, None, "duplicate_open_request", True, True, "refill"),
    ("no-consent", {}, {"consent_to_messages": False}, False, None, "no_consent", False, False, "refill"),
    (
        "no-consent-required",
        {},
        {"consent_to_messages": False},
        False,
        EligibilityPolicy(consent_required=True),
        "no_consent",
        True,
        True,
        "refill",
    ),
    (
        "contact-none",
        {},
        {"contact_preference": "none"},
        False,
        None,
        "no_contact_method",
        False,
        False,
        "refill",
    ),
    ("sms-without-phone", {}, {"has_phone": False}, False, None, "no_contact_method", False, False, "refill"),
    (
        "email-without-email",
        {},
        {"contact_preference": "email", "has_email": False},
        False,
        None,
        "no_contact_method",
        False,
        False,
        "refill",
    ),
    ("no-coverage", {}, {"has_coverage": False}, False, None, "no_coverage", False, False, "refill"),
    (
        "vet-exam-13-months",
        {},
        {"species": "dog", "last_visit_date": add_months(TODAY, -13)},
        False,
        None,
        "vcpr_exam_overdue",
        True,
        False,
        "refill",
    ),
    (
        "vet-never-examined",
        {"is_veterinary": True},
        {"last_visit_date": None},
        False,
        None,
        "vcpr_exam_overdue",
        True,
        False,
        "refill",
    ),
    (
        "no-fill-history",
        {"last_fill": None, "fills": ()},
        {},
        False,
        None,
        "no_fill_history",
        False,
        False,
        "refill",
    ),
]


@pytest.mark.parametrize(
    ("rx", "patient", "open_request", "policy", "code", "blocks_refill", "blocks_renewal", "kind_required"),
    [pytest.param(*case[1:], id=case[0]) for case in TRIGGERED],
)
def test_check_eligibility_condition_present_reason_reported(
    rx, patient, open_request, policy, code, blocks_refill, blocks_renewal, kind_required
):
    for kind, blocks in (("refill", blocks_refill), ("renewal", blocks_renewal)):
        result = check(rx, patient, open_request=open_request, policy=policy, kind=kind)
        found = reason(result, code)
        assert found.blocking is blocks, (kind, found)
        assert found.message and found.citation
        assert result.kind_required == kind_required
        if blocks:
            assert not result.eligible
        assert result.kind == kind


def test_check_eligibility_reason_codes_all_exercised():
    # allergy_conflict comes from the allergy rule's answer, tested below.
    assert {case[5] for case in TRIGGERED} | {"allergy_conflict"} == set(REASON_CODES)


@pytest.mark.parametrize("kind", ["refill", "renewal"])
def test_allergy_conflict_blocks_both_kinds_and_is_overridable(kind):
    result = check_eligibility(prescription=BASE_RX, patient=BASE_PATIENT, has_open_request=False, today=TODAY,
                               kind=kind, allergy_conflicts=("Penicillin (hives)",))
    found = reason(result, "allergy_conflict")
    assert found.blocking and found.overridable and "Penicillin (hives)" in found.message
    assert not result.eligible


def test_too_soon_is_overridable_only_where_it_blocks():
    early = replace(BASE_RX, last_fill=FillRecord(days_ago(5), 30, Decimal("30")), fills=())
    refill = check(rx={"last_fill": early.last_fill, "fills": ()})
    renewal = check(rx={"last_fill": early.last_fill, "fills": ()}, kind="renewal")
    assert reason(refill, "too_soon").blocking and reason(refill, "too_soon").overridable
    assert not reason(renewal, "too_soon").blocking and not reason(renewal, "too_soon").overridable


def test_non_overridable_blocking_findings():
    result = check(rx={"status": "on_hold"})
    assert reason(result, "not_active").blocking and not reason(result, "not_active").overridable


# Boundaries and look-alikes that must NOT produce the reason.
NOT_TRIGGERED = [
    ("active", {}, {}, "not_active"),
    ("one-refill-left", {"refills_remaining": 1}, {}, "no_refills_remaining"),
    (
        "schedule-ii-no-double-reason",
        {"dea_schedule": "2", "refills_authorized": 0, "refills_remaining": 0},
        {},
        "no_refills_remaining",
    ),
    ("expires-today", {"expiration_date": TODAY}, {}, "expired"),
    ("default-365-last-day", {"written_date": days_ago(365)}, {}, "expired"),
    ("expires-on-run-out-day", {"expiration_date": TODAY + timedelta(days=5)}, {}, "expires_before_run_out"),
    ("expires-after-run-out", {"expiration_date": TODAY + timedelta(days=30)}, {}, "expires_before_run_out"),
    (
        "schedule-iii-on-six-month-day",
        {"dea_schedule": "3", "written_date": add_months(TODAY, -6)},
        {},
        "schedule_iii_iv_six_months",
    ),
    (
        "schedule-v-seven-months",
        {"dea_schedule": "5", "written_date": add_months(TODAY, -7)},
        {},
        "schedule_iii_iv_six_months",
    ),
    (
        "schedule-v-six-refills",
        {"dea_schedule": "5", "refills_authorized": 6},
        {},
        "schedule_iii_iv_max_refills",
    ),
    (
        "schedule-iv-five-refills",
        {"dea_schedule": "4", "refills_authorized": 5, "written_date": days_ago(60)},
        {},
        "schedule_iii_iv_max_refills",
    ),
    (
        "non-controlled-seven-months",
        {"written_date": add_months(TODAY, -7)},
        {},
        "schedule_iii_iv_six_months",
    ),
    ("not-too-soon", {}, {}, "too_soon"),
    ("no-open-request", {}, {}, "duplicate_open_request"),
    ("consent", {}, {}, "no_consent"),
    ("email-with-email", {}, {"contact_preference": "email"}, "no_contact_method"),
    ("phone-with-phone", {}, {"contact_preference": "phone"}, "no_contact_method"),
    ("coverage", {}, {}, "no_coverage"),
    (
        "vet-exam-11-months",
        {},
        {"species": "dog", "last_visit_date": add_months(TODAY, -11)},
        "vcpr_exam_overdue",
    ),
    (
        "vet-exam-12-months-exactly",
        {},
        {"species": "cat", "last_visit_date": add_months(TODAY, -12)},
        "vcpr_exam_overdue",
    ),
    ("human-old-visit", {}, {"last_visit_date": add_months(TODAY, -30)}, "vcpr_exam_overdue"),
    (
        "fills-only-no-last-fill",
        {"last_fill": None, "fills": (FillRecord(days_ago(25), 30),)},
        {},
        "no_fill_history",
    ),
]


@pytest.mark.parametrize(("rx", "patient", "code"), [pytest.param(*c[1:], id=c[0]) for c in NOT_TRIGGERED])
def test_check_eligibility_condition_absent_reason_not_reported(rx, patient, code):
    for kind in ("refill", "renewal"):
        assert code not in check(rx, patient, kind=kind).codes


@pytest.mark.parametrize(
    ("used_days", "too_soon"),
    [
        pytest.param(74, True, id="74-percent"),
        pytest.param(75, False, id="75-percent"),
        pytest.param(76, False, id="76-percent"),
    ],
)
def test_check_eligibility_share_used_too_soon_at_threshold(used_days, too_soon):
    fill = FillRecord(days_ago(used_days), 100)
    result = check({"last_fill": fill, "fills": (), "days_supply": 100})
    assert ("too_soon" in result.codes) is too_soon
    assert result.eligible is not too_soon
    assert result.earliest_refill_date == fill.fill_date + timedelta(days=75)
    if too_soon:
        assert (fill.fill_date + timedelta(days=75)).isoformat() in reason(result, "too_soon").message


def test_check_eligibility_policy_share_configurable_too_soon():
    rx = {"last_fill": FillRecord(days_ago(76), 100), "fills": (), "days_supply": 100}
    assert "too_soon" in check(rx, policy=EligibilityPolicy(too_soon_share=Decimal("0.8"))).codes
    assert "too_soon" not in check(rx, policy=EligibilityPolicy(too_soon_share=Decimal("0.7"))).codes


def test_check_eligibility_early_fill_carries_over_to_run_out():
    rx = {"fills": (FillRecord(days_ago(50), 30),), "last_fill": FillRecord(days_ago(25), 30)}
    # First fill covers days 50…21 ago; the early refill starts 20 days ago and runs 30 days.
    result = check(rx)
    assert result.run_out_date == TODAY + timedelta(days=10)


@pytest.mark.parametrize(
    ("schedule", "authorized", "remaining", "written_days_ago", "refill_ok"),
    [
        pytest.param("2", 0, 0, 10, False, id="schedule-ii-never"),
        pytest.param("3", 5, 2, 150, True, id="schedule-iii-within-six-months"),
        pytest.param("3", 5, 2, 200, False, id="schedule-iii-after-six-months"),
        pytest.param("4", 5, 2, 150, True, id="schedule-iv-within-six-months"),
        pytest.param("4", 6, 2, 150, False, id="schedule-iv-six-refills"),
        pytest.param("5", 11, 2, 300, True, id="schedule-v-not-limited"),
        pytest.param("none", 11, 2, 300, True, id="non-controlled-within-expiry"),
        pytest.param("none", 11, 2, 400, False, id="non-controlled-past-expiry"),
    ],
)
def test_check_eligibility_dea_schedule_refill_limits(
    schedule, authorized, remaining, written_days_ago, refill_ok
):
    result = check(
        {
            "dea_schedule": schedule,
            "refills_authorized": authorized,
            "refills_remaining": remaining,
            "written_date": days_ago(written_days_ago),
        }
    )
    assert result.eligible is refill_ok
    assert result.kind_required == ("refill" if refill_ok else "renewal")
    renewal = check(
        {
            "dea_schedule": schedule,
            "refills_authorized": authorized,
            "refills_remaining": remaining,
            "written_date": days_ago(written_days_ago),
        },
        kind="renewal",
    )
    assert renewal.eligible


@pytest.mark.parametrize(
    ("schedule", "expiration", "expected"),
    [
        pytest.param("none", None, date(2025, 1, 14), id="non-controlled-default-365"),
        pytest.param("5", None, date(2025, 1, 14), id="schedule-v-default"),
        pytest.param("3", None, date(2024, 7, 15), id="schedule-iii-six-months"),
        pytest.param("4", date(2024, 12, 31), date(2024, 7, 15), id="schedule-iv-capped-at-six-months"),
        pytest.param("none", date(2024, 3, 1), date(2024, 3, 1), id="explicit-date"),
    ],
)
def test_valid_until_schedule_and_expiry_last_fillable_day(schedule, expiration, expected):
    rx = replace(BASE_RX, dea_schedule=schedule, expiration_date=expiration)
    assert valid_until(rx) == expected


def test_check_eligibility_several_problems_all_reasons_reported():
    result = check(
        {"dea_schedule": "2", "refills_authorized": 0, "refills_remaining": 0, "status": "on_hold"},
        {"consent_to_messages": False, "has_coverage": False},
        open_request=True,
    )
    assert set(result.codes) >= {
        "not_active",
        "schedule_ii_no_refills",
        "duplicate_open_request",
        "no_consent",
        "no_coverage",
    }
    assert {r.code for r in result.blocking_reasons} == {
        "not_active",
        "schedule_ii_no_refills",
        "duplicate_open_request",
    }
    assert {r.code for r in result.warnings} == {"no_consent", "no_coverage"}
    assert not result.converts_to_renewal


def test_check_eligibility_refill_needing_renewal_converts_to_renewal():
    result = check({"refills_remaining": 0})
    assert not result.eligible and result.kind_required == "renewal"
    assert result.converts_to_renewal
    assert check({"refills_remaining": 0}, kind="renewal").eligible


def test_check_eligibility_unknown_kind_raises():
    with pytest.raises(ValueError):
        check(kind="transfer")


# ---- detection helper ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rx", "lookahead", "expected"),
    [
        pytest.param({}, 7, (TODAY + timedelta(days=5), "refill"), id="due-refill"),
        pytest.param({}, 3, None, id="beyond-lookahead"),
        pytest.param({"last_fill": FillRecord(days_ago(1), 30), "fills": ()}, 7, None, id="just-filled"),
        pytest.param(
            {"refills_remaining": 0}, 7, (TODAY + timedelta(days=5), "renewal"), id="no-refills-renewal"
        ),
        pytest.param(
            {"dea_schedule": "2", "refills_authorized": 0, "refills_remaining": 0},
            7,
            (TODAY + timedelta(days=5), "renewal"),
            id="schedule-ii-renewal",
        ),
        pytest.param(
            {"expiration_date": TODAY + timedelta(days=2)},
            7,
            (TODAY + timedelta(days=5), "renewal"),
            id="expiring-but-refillable-now",
        ),
        pytest.param(
            {"expiration_date": days_ago(1)}, 7, (TODAY + timedelta(days=5), "renewal"), id="expired-renewal"
        ),
        pytest.param({"status": "expired"}, 7, (TODAY + timedelta(days=5), "renewal"), id="status-expired"),
        pytest.param({"status": "discontinued"}, 7, None, id="discontinued"),
        pytest.param({"status": "on_hold"}, 7, None, id="on-hold"),
        pytest.param({"last_fill": None, "fills": ()}, 7, None, id="no-fill-history"),
        pytest.param(
            {"last_fill": FillRecord(days_ago(40), 30), "fills": ()},
            7,
            (days_ago(10), "refill"),
            id="already-run-out",
        ),
        pytest.param({"last_fill": FillRecord(days_ago(100), 30), "fills": ()}, 7, None, id="lapsed-therapy"),
        pytest.param({"fills": (FillRecord(days_ago(50), 30),)}, 7, None, id="early-fill-carries-over"),
    ],
)
def test_compute_run_out_and_kind_supply_state_due_or_not(rx, lookahead, expected):
    prescription = replace(BASE_RX, **rx)
    assert (
        compute_run_out_and_kind(prescription=prescription, today=TODAY, lookahead_days=lookahead) == expected
    )


def test_compute_run_out_and_kind_no_overdue_cutoff_lapsed_therapy_due():
    prescription = replace(BASE_RX, last_fill=FillRecord(days_ago(100), 30), fills=())
    assert compute_run_out_and_kind(prescription=prescription, today=TODAY, max_days_overdue=None) == (
        days_ago(70),
        "refill",
    )


def test_compute_run_out_and_kind_matches_check_eligibility_kind():
    for overrides in (
        {},
        {"refills_remaining": 0},
        {"dea_schedule": "4", "written_date": add_months(TODAY, -7)},
    ):
        prescription = replace(BASE_RX, **overrides)
        due = compute_run_out_and_kind(prescription=prescription, today=TODAY)
        result = check_eligibility(
            prescription=prescription, patient=BASE_PATIENT, has_open_request=False, today=TODAY
        )
        assert due == (result.run_out_date, result.kind_required)
