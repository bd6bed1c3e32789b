"""Days supply, run-out date and adherence (PDC, MPR) over plain fill records.

Pure: no Django, no ORM, no settings. Services map ``pharmacy.models.Fill`` rows to ``FillRecord``.

Conventions (STANDARDS.md "Days supply, run-out, adherence"):
- A fill covers ``days_supply`` days starting on its fill date, so its last covered day is
  fill date + days supply − 1, and the run-out date is the day after the last covered day.
- Carry-over (PQA PDC method): fills of the same drug are taken in fill-date order; a fill made
  while earlier supply is still on hand starts the day after that supply ends, so nothing is
  counted twice and nothing is lost. All fills passed in are treated as the same drug.
- Dates are inclusive: a window ``start``–``end`` has ``(end - start).days + 1`` days.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

# Ratios (PDC, MPR, share used) are rounded to 4 decimal places, half up (0.7999 shows as 79.99 %).
RATIO_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class FillRecord:
    fill_date: date
    days_supply: int
    quantity: Decimal | float | None = None

    def __post_init__(self) -> None:
        if self.days_supply <= 0:
            raise ValueError(f"days_supply must be positive, got {self.days_supply!r}")

    @property
    def last_covered_day(self) -> date:
        # STANDARDS: last covered day = fill date + days supply − 1 (this fill alone, no carry-over).
        return self.fill_date + timedelta(days=self.days_supply - 1)


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic, clamping to the month's last day (Aug 31 + 6 months = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _ordered(fills: Iterable[FillRecord]) -> list[FillRecord]:
    # Stable order: by fill date; same-day fills keep their given order and are stacked (carry-over).
    return sorted(fills, key=lambda f: f.fill_date)


def covered_days(fills: Iterable[FillRecord]) -> list[tuple[date, date]]:
    """One (first, last) covered-day pair per fill, in fill-date order, after carry-over.

    PQA PDC method: an early fill of the same drug is shifted to start the day after the supply on
    hand ends. The pairs never overlap; adjacent pairs may touch (merge them to get episodes).
    """
    periods: list[tuple[date, date]] = []
    previous_last: date | None = None
    for fill in _ordered(fills):
        first = fill.fill_date
        if previous_last is not None and first <= previous_last:
            first = previous_last + timedelta(days=1)  # PQA: carry the remaining supply over
        last = first + timedelta(days=fill.days_supply - 1)
        periods.append((first, last))
        previous_last = last
    return periods


def last_covered_day(fills: Iterable[FillRecord]) -> date | None:
    periods = covered_days(fills)
    return periods[-1][1] if periods else None


def run_out_date(fills: Iterable[FillRecord]) -> date | None:
    """The first day without supply: the day after the last covered day (with carry-over)."""
    last = last_covered_day(fills)
    return last + timedelta(days=1) if last else None


def carried_over_days(fills: Iterable[FillRecord], as_of: date) -> int:
    """Days of earlier supply still on hand when the latest fill on or before ``as_of`` was made.

    This is how far carry-over pushes that fill forward, i.e. DESIGN's
    run-out date = last fill date + days supply + carried-over days. 0 without fills.
    """
    usable = [f for f in fills if f.fill_date <= as_of]
    if not usable:
        return 0
    periods = covered_days(usable)
    last_fill = _ordered(usable)[-1]
    return (periods[-1][0] - last_fill.fill_date).days


def days_on_hand(fills: Iterable[FillRecord], as_of: date) -> int:
    """Covered days from ``as_of`` (inclusive) to the last covered day; 0 once run out."""
    usable = [f for f in fills if f.fill_date <= as_of]
    last = last_covered_day(usable)
    if last is None or last < as_of:
        return 0
    return sum(_overlap(p, (as_of, last)) for p in covered_days(usable))


def _overlap(period: tuple[date, date], window: tuple[date, date]) -> int:
    first, last = max(period[0], window[0]), min(period[1], window[1])
    return (last - first).days + 1 if first <= last else 0


def _ratio(numerator: int, denominator: int) -> Decimal:
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_UP)


def _check_window(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"window end {end} is before start {start}")


def pdc(fills: Iterable[FillRecord], *, start: date, end: date, from_first_fill: bool = True) -> Decimal:
    """Proportion of days covered in ``start``–``end`` (inclusive), 0–1, PQA method.

    - Carry-over applies across all fills given, including fills before the window: supply
      still on hand at ``start`` counts (clipped to the window), supply after ``end`` is dropped.
    - Treatment period (our choice, documented): with ``from_first_fill`` (default, PQA) the
      denominator starts at the first covered day in the window — the index fill date, or
      ``start`` itself when earlier supply carries into the window — and runs to ``end``. With
      ``from_first_fill=False`` the whole window is the denominator.
    - No covered day in the window → ``Decimal("0")``.
    """
    _check_window(start, end)
    periods = [p for p in covered_days(fills) if _overlap(p, (start, end))]
    if not periods:
        return Decimal("0")
    period_start = max(start, periods[0][0]) if from_first_fill else start
    covered = sum(_overlap(p, (period_start, end)) for p in periods)
    return _ratio(covered, (end - period_start).days + 1)


def mpr(fills: Iterable[FillRecord], start: date, end: date) -> Decimal:
    """Medication possession ratio: days supply of fills dated in the window ÷ days in the window.

    STANDARDS: MPR = sum of days supply ÷ days in period, capped at 100 %. No carry-over and no
    clipping (that is what distinguishes it from PDC); fills dated outside the window are ignored.
    """
    _check_window(start, end)
    supplied = sum(f.days_supply for f in fills if start <= f.fill_date <= end)
    return min(_ratio(supplied, (end - start).days + 1), Decimal("1"))


def days_supply_used_share(last_fill: FillRecord, as_of: date) -> Decimal:
    """Share of ``last_fill``'s days supply used by ``as_of``: days elapsed since the fill ÷ days supply.

    0 on the fill date (and before it); 1 on the run-out day; not capped above 1 (1.2 = 20 % of
    the supply past run-out). Rounded to 4 places. Used for the refill-too-soon check.
    """
    elapsed = max((as_of - last_fill.fill_date).days, 0)
    return _ratio(elapsed, last_fill.days_supply)


def earliest_refill_date(last_fill: FillRecord, share: Decimal) -> date:
    """First day on which ``days_supply_used_share(last_fill, day) >= share``."""
    # ceil(share × days supply) days after the fill; Decimal keeps 0.75 × 30 = 22.5 exact.
    needed = share * last_fill.days_supply
    days = int(needed.to_integral_value(rounding=ROUND_CEILING))
    candidate = last_fill.fill_date + timedelta(days=max(days, 0))
    # Guard the 4-place rounding of the share so the two functions always agree.
    one_day = timedelta(days=1)
    while candidate > last_fill.fill_date and days_supply_used_share(last_fill, candidate - one_day) >= share:
        candidate -= one_day
    while days_supply_used_share(last_fill, candidate) < share:
        candidate += one_day
    return candidate
