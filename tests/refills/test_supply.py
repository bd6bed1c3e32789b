"""Days supply, run-out and adherence (PQA PDC method) — pure, no database."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pharmacy.rules.supply import (
    FillRecord,
    add_months,
    carried_over_days,
    covered_days,
    days_on_hand,
    days_supply_used_share,
    earliest_refill_date,
    last_covered_day,
    mpr,
    pdc,
    run_out_date,
)


@pytest.fixture(autouse=True)
def _plain_http():
    """Pure tests: replaces the Django-settings autouse fixture of tests/conftest.py."""


def d(text: str) -> date:
    return date.fromisoformat(text)


def f(day: str, days_supply: int) -> FillRecord:
    return FillRecord(d(day), days_supply)


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        pytest.param([f("2018-01-01", 30)], [("2018-01-01", "2018-01-30")], id="single-fill"),
        pytest.param(
            [f("2018-01-01", 30), f("2018-01-25", 30)],
            [("2018-01-01", "2018-01-30"), ("2018-01-31", "2018-03-01")],
            id="early-fill-carries-over",
        ),
        pytest.param(
            [f("2018-01-01", 30), f("2018-03-01", 30)],
            [("2018-01-01", "2018-01-30"), ("2018-03-01", "2018-03-30")],
            id="gap-not-shifted",
        ),
        pytest.param(
            [f("2018-03-25", 90), f("2018-07-05", 90), f("2018-09-25", 90)],
            [("2018-03-25", "2018-06-22"), ("2018-07-05", "2018-10-02"), ("2018-10-03", "2018-12-31")],
            id="pqa-gap-then-early-fill",
        ),
        pytest.param(
            [f("2018-01-25", 30), f("2018-01-01", 30)],
            [("2018-01-01", "2018-01-30"), ("2018-01-31", "2018-03-01")],
            id="unsorted-input",
        ),
        pytest.param(
            [f("2018-01-01", 30), f("2018-01-01", 30)],
            [("2018-01-01", "2018-01-30"), ("2018-01-31", "2018-03-01")],
            id="same-day-fills-stack",
        ),
        pytest.param(
            [f("2018-01-01", 30), f("2018-01-10", 30), f("2018-01-20", 30)],
            [("2018-01-01", "2018-01-30"), ("2018-01-31", "2018-03-01"), ("2018-03-02", "2018-03-31")],
            id="chain-of-early-fills",
        ),
    ],
)
def test_covered_days_fill_pattern_shifted_per_pqa(fills, expected):
    assert covered_days(fills) == [(d(a), d(b)) for a, b in expected]


def test_covered_days_no_fills_empty():
    assert covered_days([]) == []
    assert last_covered_day([]) is None
    assert run_out_date([]) is None


def test_run_out_date_single_fill_day_after_last_covered_day():
    # STANDARDS: last covered day = fill date + days supply − 1; run-out = the day after.
    fills = [f("2024-03-01", 30)]
    assert last_covered_day(fills) == d("2024-03-30")
    assert run_out_date(fills) == d("2024-03-31")
    assert fills[0].last_covered_day == d("2024-03-30")


def test_run_out_date_early_fill_includes_carried_over_supply():
    fills = [f("2018-01-01", 30), f("2018-01-25", 30)]
    assert run_out_date(fills) == d("2018-03-02")
    carried = carried_over_days(fills, d("2018-01-25"))
    assert carried == 6  # 01-25 … 01-30 still on hand
    # DESIGN: run-out = last fill date + days supply + carried-over days.
    assert run_out_date(fills) == d("2018-01-25") + timedelta(days=30 + carried)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param("2017-12-31", 0, id="before-any-fill"),
        pytest.param("2018-01-10", 0, id="first-fill-only"),
        pytest.param("2018-01-25", 6, id="after-early-fill"),
    ],
)
def test_carried_over_days_as_of_date_counts_supply_on_hand_at_last_fill(as_of, expected):
    assert carried_over_days([f("2018-01-01", 30), f("2018-01-25", 30)], d(as_of)) == expected


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        pytest.param("2018-01-01", 30, id="fill-day"),
        pytest.param("2018-01-30", 1, id="last-covered-day"),
        pytest.param("2018-01-31", 0, id="run-out-day"),
        pytest.param("2017-12-01", 0, id="before-fill"),
    ],
)
def test_days_on_hand_as_of_date_counts_remaining_covered_days(as_of, expected):
    assert days_on_hand([f("2018-01-01", 30)], d(as_of)) == expected


@pytest.mark.parametrize(
    ("fills", "start", "end", "expected"),
    [
        pytest.param(  # gap in July; IPSD 03-25 → 282-day treatment period
            [f("2018-03-25", 90), f("2018-07-05", 90), f("2018-09-25", 90)],
            "2018-01-01",
            "2018-12-31",
            Decimal("270") / 282,
            id="pqa-index-date-gap-early-fill",
        ),
        pytest.param(  # early fill shifted to 04-01; last fill clipped at 12-31
            [f("2018-01-01", 90), f("2018-03-25", 90), f("2018-07-05", 90), f("2018-10-15", 90)],
            "2018-01-01",
            "2018-12-31",
            Decimal("348") / 365,
            id="pqa-overlap-and-clip",
        ),
        pytest.param(  # supply from December carries into January: 13 of 31 days
            [f("2017-12-15", 30)],
            "2018-01-01",
            "2018-01-31",
            Decimal("13") / 31,
            id="fill-before-window",
        ),
        pytest.param(  # early fill before the window pushes coverage into it
            [f("2017-12-01", 30), f("2017-12-20", 30)],
            "2018-01-01",
            "2018-01-31",
            Decimal("29") / 31,
            id="carry-over-across-window-start",
        ),
        pytest.param(
            [f("2018-12-15", 30)],
            "2018-12-01",
            "2018-12-31",
            Decimal("1"),
            id="supply-past-end-clipped",
        ),
        pytest.param(
            [f("2018-01-01", 30), f("2018-01-15", 30), f("2018-01-30", 30)],
            "2018-01-01",
            "2018-03-31",
            Decimal("1"),
            id="early-fills-never-exceed-one",
        ),
        pytest.param([], "2018-01-01", "2018-12-31", Decimal("0"), id="no-fills"),
        pytest.param(
            [f("2017-01-01", 30)], "2018-01-01", "2018-12-31", Decimal("0"), id="fills-outside-window"
        ),
    ],
)
def test_pdc_fill_pattern_matches_pqa_method(fills, start, end, expected):
    assert pdc(fills, start=d(start), end=d(end)) == expected.quantize(Decimal("0.0001"))


def test_pdc_whole_window_option_counts_days_before_first_fill():
    fills = [f("2018-01-11", 10)]
    assert pdc(fills, start=d("2018-01-01"), end=d("2018-01-31")) == Decimal("0.4762")  # 10 / 21
    assert pdc(fills, start=d("2018-01-01"), end=d("2018-01-31"), from_first_fill=False) == Decimal("0.3226")


def test_pdc_end_before_start_raises():
    with pytest.raises(ValueError):
        pdc([], start=d("2018-02-01"), end=d("2018-01-01"))


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        pytest.param(
            [f("2018-01-01", 30), f("2018-02-15", 30)], Decimal("0.6667"), id="two-fills-in-90-days"
        ),
        pytest.param([f("2018-01-01", 90), f("2018-02-01", 90)], Decimal("1"), id="oversupply-capped"),
        pytest.param(
            [f("2017-12-20", 30), f("2018-01-10", 30)], Decimal("0.3333"), id="fill-before-window-ignored"
        ),
        pytest.param([], Decimal("0"), id="no-fills"),
    ],
)
def test_mpr_fills_in_window_sum_capped_at_one(fills, expected):
    assert mpr(fills, d("2018-01-01"), d("2018-03-31")) == expected


@pytest.mark.parametrize(
    ("days_after_fill", "expected"),
    [
        pytest.param(-3, Decimal("0"), id="before-fill"),
        pytest.param(0, Decimal("0"), id="fill-day"),
        pytest.param(74, Decimal("0.74"), id="74-percent"),
        pytest.param(75, Decimal("0.75"), id="75-percent"),
        pytest.param(76, Decimal("0.76"), id="76-percent"),
        pytest.param(120, Decimal("1.2"), id="past-run-out-not-capped"),
    ],
)
def test_days_supply_used_share_days_elapsed_share_of_supply(days_after_fill, expected):
    fill = f("2024-01-01", 100)
    assert days_supply_used_share(fill, fill.fill_date + timedelta(days=days_after_fill)) == expected


@pytest.mark.parametrize(
    ("days_supply", "share", "expected_days"),
    [
        pytest.param(30, Decimal("0.75"), 23, id="30-days-75"),
        pytest.param(100, Decimal("0.75"), 75, id="100-days-75"),
        pytest.param(90, Decimal("0.8"), 72, id="90-days-80"),
        pytest.param(28, Decimal("0.6667"), 19, id="28-days-two-thirds"),
        pytest.param(30, Decimal("0"), 0, id="no-threshold"),
    ],
)
def test_earliest_refill_date_share_threshold_first_day_reached(days_supply, share, expected_days):
    fill = f("2024-01-01", days_supply)
    day = earliest_refill_date(fill, share)
    assert day == fill.fill_date + timedelta(days=expected_days)
    assert days_supply_used_share(fill, day) >= share
    if expected_days:
        assert days_supply_used_share(fill, day - timedelta(days=1)) < share


def test_fill_record_zero_days_supply_raises():
    with pytest.raises(ValueError):
        FillRecord(d("2024-01-01"), 0)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param("2024-08-31", 6, "2025-02-28", id="clamp-non-leap"),
        pytest.param("2023-08-31", 6, "2024-02-29", id="clamp-leap"),
        pytest.param("2024-06-01", -12, "2023-06-01", id="backwards-a-year"),
        pytest.param("2024-01-15", 6, "2024-07-15", id="plain"),
    ],
)
def test_add_months_calendar_months_clamped_to_month_end(day, months, expected):
    assert add_months(d(day), months) == d(expected)


fill_lists = st.lists(
    st.builds(
        FillRecord,
        st.dates(min_value=date(2020, 1, 1), max_value=date(2021, 12, 31)),
        st.integers(min_value=1, max_value=120),
    ),
    max_size=12,
)


@given(fill_lists)
def test_covered_days_any_fills_never_overlap_and_keep_all_supply(fills):
    periods = covered_days(fills)
    assert sum((b - a).days + 1 for a, b in periods) == sum(x.days_supply for x in fills)
    for (_, previous_end), (next_start, _) in zip(periods, periods[1:], strict=False):
        assert next_start > previous_end
    for (start, _), fill in zip(periods, sorted(fills, key=lambda x: x.fill_date), strict=True):
        assert start >= fill.fill_date


@given(fill_lists, st.dates(min_value=date(2020, 1, 1), max_value=date(2021, 12, 31)), st.integers(0, 400))
def test_pdc_any_fills_between_zero_and_one(fills, start, length):
    end = start + timedelta(days=length)
    for whole in (True, False):
        value = pdc(fills, start=start, end=end, from_first_fill=whole)
        assert Decimal("0") <= value <= Decimal("1")
    assert Decimal("0") <= mpr(fills, start, end) <= Decimal("1")
