"""Decision deadlines (STANDARDS.md): pharmacy benefit 24 h / 72 h (42 CFR 423.572 / 423.568),
medical benefit 72 h / 7 days (CMS-0057-F), payer overrides; age and overdue flag."""

from datetime import UTC, datetime, timedelta

import pytest

from priorauth.deadlines import case_clock, decision_due, decision_hours

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("benefit", "expedited", "hours"),
    [
        ("pharmacy", True, 24),
        ("pharmacy", False, 72),
        ("medical", True, 72),
        ("medical", False, 168),
    ],
)
def test_default_deadlines(benefit, expedited, hours):
    assert decision_due(submitted_at=T0, benefit=benefit, expedited=expedited) == T0 + timedelta(hours=hours)


def test_payer_overrides_each_clock():
    assert decision_hours(benefit="pharmacy", expedited=False, standard_hours=48) == 48
    assert decision_hours(benefit="pharmacy", expedited=True, standard_hours=48) == 24
    assert decision_hours(benefit="medical", expedited=True, expedited_hours=12) == 12


def test_clock_overdue_only_while_waiting():
    due = T0 + timedelta(hours=72)
    late = due + timedelta(minutes=1)
    assert case_clock(created_at=T0, due_at=due, decided=False, now=late).overdue
    assert not case_clock(created_at=T0, due_at=due, decided=True, now=late).overdue
    assert not case_clock(created_at=T0, due_at=due, decided=False, now=due).overdue
    clock = case_clock(created_at=T0 - timedelta(hours=5), due_at=None, decided=False, now=T0)
    assert clock.age == timedelta(hours=5) and clock.remaining is None and not clock.overdue
