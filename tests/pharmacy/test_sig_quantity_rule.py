"""Issue 13 item 4, the pure part: quantity and days supply consistent with a parsable sig (a
mismatch is a warning, never a refusal), doses a day read from the sig, and quantities written as
people write them ("90", never "9E+1")."""
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from pharmacy.rules.authority import check_changes, format_quantity, sig_quantity_warning
from refills.authority import units_per_day

SIGS = [  # (sig, doses a day; None = no fixed daily dose, so no warning is ever given)
    ("Take 1 tablet by mouth once daily", D(1)),
    ("Take 1 tablet by mouth twice daily", D(2)),
    ("take one tablet twice daily", D(2)),
    ("take 2 tabs po tid", D(6)),
    ("1 tab q8h", D(3)),
    ("Take 1 capsule at bedtime", D(1)),
    ("take 1/2 tablet daily", D("0.5")),
    ("take 1.5 tablets daily", D("1.5")),
    ("take 1-2 tablets daily", None),  # a range
    ("take 1 to 2 tablets bid", None),
    ("take 1 tablet by mouth every 6 hours as needed for pain", None),  # PRN
    ("Use as directed", None),
    ("", None),
]


@pytest.mark.parametrize(("sig", "per_day"), SIGS)
def test_doses_a_day_are_read_from_a_plain_sig_only(sig, per_day):
    assert units_per_day(sig) == per_day


WARNINGS = [  # (quantity, days supply, doses a day, expected warning or "")
    (D("30"), 30, D(1), ""),
    (D("30.000"), 30, D(1), ""),
    (D("32"), 30, D(1), ""),  # within 10 % (and at least one unit)
    (D("34"), 30, D(1), "Quantity 34 does not match the sig for 30 days (30 expected at 1 a day)."),
    (D("90.000"), 30, D(1), "Quantity 90 does not match the sig for 30 days (30 expected at 1 a day)."),
    (D("60"), 30, D(2), ""),
    (D("30"), 30, D(2), "Quantity 30 does not match the sig for 30 days (60 expected at 2 a day)."),
    (D("15"), 30, D("0.5"), ""),
    (D("4"), 28, D(1) / 7, ""),
    (D("10"), 28, D(1) / 7, "Quantity 10 does not match the sig for 28 days (4 expected at 0.143 a day)."),
    (D("90"), 30, None, ""),  # unreadable sig: nothing to compare
    (D("0"), 30, D(1), ""),  # not positive: a refusal elsewhere, not this warning
]


@pytest.mark.parametrize(("quantity", "days", "per_day", "expected"), WARNINGS)
def test_a_quantity_that_does_not_match_the_sig_is_a_warning(quantity, days, per_day, expected):
    assert sig_quantity_warning(quantity=quantity, days_supply=days, units_per_day=per_day) == expected


@pytest.mark.parametrize(("value", "text"), [(D("90.000"), "90"), (D("90"), "90"), (D("100"), "100"),
                                            (D("0.500"), "0.5"), (D("1E+2"), "100"), (D("2.25"), "2.25")])
def test_quantities_are_written_plainly(value, text):
    assert format_quantity(value) == text and "E" not in format_quantity(value)


@pytest.mark.parametrize("refills", [None, 2])
def test_check_changes_warns_with_or_without_a_change_of_refills(refills):
    today = date(2026, 12, 2)
    result = check_changes(dea_schedule="none", quantity=D("90"), days_supply=30, refills=refills, today=today,
                           expiration=today + timedelta(days=365), units_per_day=D(1))
    assert result.ok and result.warnings == ("Quantity 90 does not match the sig for 30 days "
                                             "(30 expected at 1 a day).",)


def test_check_changes_gives_no_warning_beside_a_refusal():
    today = date(2026, 12, 2)
    result = check_changes(dea_schedule="none", quantity=D("90"), days_supply=30, refills=99, today=today,
                           expiration=today + timedelta(days=365), units_per_day=D(1))
    assert not result.ok and "refills" in result.errors and result.warnings == ()
