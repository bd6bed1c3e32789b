"""Payer decision deadlines. Pure.

Defaults (STANDARDS.md "Prior authorization rules"):
* pharmacy-benefit (Part D) drugs: 24 h expedited / 72 h standard — 42 CFR 423.568 (standard
  coverage determinations), 42 CFR 423.572 (expedited);
* medical-benefit drugs: 72 h expedited / 7 calendar days standard — CMS-0057-F (89 FR 8758),
  from 2026-01-01 for impacted payers.
Each payer may override both (Payer.expedited_hours / standard_hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_HOURS: dict[tuple[str, bool], int] = {
    ("pharmacy", True): 24,  # 42 CFR 423.572
    ("pharmacy", False): 72,  # 42 CFR 423.568
    ("medical", True): 72,  # CMS-0057-F, 89 FR 8758
    ("medical", False): 7 * 24,  # CMS-0057-F, 89 FR 8758 (7 calendar days)
}


def decision_hours(
    *, benefit: str, expedited: bool, expedited_hours: int | None = None, standard_hours: int | None = None
) -> int:
    override = expedited_hours if expedited else standard_hours
    if override:
        return int(override)
    return DEFAULT_HOURS[(benefit, bool(expedited))]


def decision_due(
    *,
    submitted_at: datetime,
    benefit: str,
    expedited: bool,
    expedited_hours: int | None = None,
    standard_hours: int | None = None,
) -> datetime:
    return submitted_at + timedelta(
        hours=decision_hours(
            benefit=benefit,
            expedited=expedited,
            expedited_hours=expedited_hours,
            standard_hours=standard_hours,
        )
    )


@dataclass(frozen=True)
class Clock:
    age: timedelta
    due_at: datetime | None
    remaining: timedelta | None
    overdue: bool


def case_clock(*, created_at: datetime, due_at: datetime | None, decided: bool, now: datetime) -> Clock:
    """Age of the case and where it stands against the payer's deadline (overdue only while
    the payer still owes an answer)."""
    remaining = (due_at - now) if due_at else None
    return Clock(
        age=now - created_at,
        due_at=due_at,
        remaining=remaining,
        overdue=bool(due_at and not decided and now > due_at),
    )
