"""Controlled-substance refill limits (DEA schedules), written once for the whole house.

Pure: no Django. Cited facts (docs/standards.md "DEA"):
- Schedule II: no refills (21 CFR 1306.12(a)); a new prescription is needed every time.
- Schedules III and IV: at most 5 refills, and none more than 6 months after the date issued
  (21 CFR 1306.22(a)).
- Schedule V is outside those limits (21 CFR 1306.22 covers III and IV only).

Used by the ``Prescription`` model (database constraints, default expiry, ``clean``), the refill
eligibility rules and the refill services (approve-with-changes, renewals).
"""
from __future__ import annotations

from datetime import date

from .supply import add_months

SCHEDULE_II = "2"
SCHEDULES_III_IV = frozenset({"3", "4"})
MAX_REFILLS_III_IV = 5  # 21 CFR 1306.22(a)
REFILL_MONTHS_III_IV = 6  # 21 CFR 1306.22(a): no refill later than 6 months after the date issued

CFR_1306_12 = "21 CFR 1306.12(a)"
CFR_1306_22 = "21 CFR 1306.22(a)"

# Most refills a prescriber may authorize per schedule; a schedule not named here is not limited.
MAX_REFILLS: dict[str, int] = {SCHEDULE_II: 0, **{s: MAX_REFILLS_III_IV for s in sorted(SCHEDULES_III_IV)}}


def max_refills(schedule: str) -> int | None:
    """The most refills a prescription of this DEA schedule may carry, or None when not limited."""
    return MAX_REFILLS.get(schedule)


def max_refills_citation(schedule: str) -> str:
    """The regulation behind ``max_refills(schedule)`` (short form, as shown to users)."""
    return "21 CFR 1306.12" if schedule == SCHEDULE_II else "21 CFR 1306.22"


def refill_deadline(written: date) -> date:
    """Schedules III/IV: the last day a refill may be dispensed, 6 months after the date issued."""
    return add_months(written, REFILL_MONTHS_III_IV)
