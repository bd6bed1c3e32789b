"""Detection engine: open a refill (or renewal) request for every active prescription whose
supply runs out within the look-ahead window.

Set-based, in SQL: prescriptions are taken in id-range chunks and, per chunk, ONE statement on
PostgreSQL computes the due set and writes the requests and their history rows
(``WITH … INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``, data-modifying CTEs). SQLite,
which has no data-modifying CTEs, takes three statements per chunk (counts, INSERT … SELECT …
RETURNING, history INSERT … SELECT). Nothing is read into Python but the ids of the new rows.

The rule is ``refills.eligibility.compute_run_out_and_kind`` (the reference, in Python): every
fact it uses is a fact of columns, so all of it is SQL here —
- run-out date with PQA carry-over: max over fills of (fill date + days supply of that fill and
  every later one), a window sum (the closed form of pharmacy.rules.supply.covered_days);
- the look-ahead window and the 60-day "therapy presumed stopped" cut-off;
- the renewal triggers of eligibility._prescription_state: not active (expired / completed),
  Schedule II (21 CFR 1306.12(a)), no refills remaining, Schedules III/IV past 6 months or past
  5 refills (21 CFR 1306.22(a)), expired, expiring before the supply runs out.
tests/refills/test_detection_sql.py property-tests this SQL against the Python rule (hypothesis);
``detect_refills_reference`` keeps the Python engine for that test and for bench/detection.py's
"same rows" check. No rule is left for Python: the too-soon share changes whether a refill is
blocking, not whether or which request opens, and is evaluated later per request.

Two runs at once are safe: the partial unique index "one open request per prescription" makes the
loser's rows conflict and be skipped (ON CONFLICT DO NOTHING). Evaluation (eligibility +
protocol) follows separately, per request, in workers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from pharmacy.actors import actor_user, system_actor
from pharmacy.models import Drug, Fill, Prescription
from pharmacy.rules.controlled import MAX_REFILLS_III_IV
from pharmacy.rules.controlled import REFILL_MONTHS_III_IV as SIX_MONTHS
from pharmacy.rules.controlled import SCHEDULES_III_IV as CONTROLLED_III_IV
from pharmacy.rules.facts import COUNTED_FILL_STATUSES
from pharmacy.rules.supply import FillRecord

from .choices import OPEN_STATUSES, RefillStatus, RequestKind, RequestSource
from .conf import eligibility_policy, lookahead_days
from .eligibility import (
    RENEWABLE_STATUSES,
    EligibilityPolicy,
    PrescriptionFacts,
    compute_run_out_and_kind,
)
from .models import RefillRequest

DETECTION = system_actor("system:refill-detection")
CHUNK = 5000  # Python reference engine
SQL_CHUNK = 50_000  # prescriptions per statement of the SQL engine
MAX_DAYS_OVERDUE = 60  # compute_run_out_and_kind's default cut-off
LAST_FILL_HORIZON_DAYS = 730


@dataclass
class DetectionResult:
    examined: int = 0
    due: int = 0
    opened: int = 0
    skipped_open: int = 0
    by_kind: dict = field(default_factory=lambda: defaultdict(int))
    request_ids: list[int] = field(default_factory=list)


def candidate_prescriptions(today: date, lookahead: int):
    """Active (or expired/completed, which may need a renewal) prescriptions with a recent fill
    and no open request; a prescription filled after the window cannot be due."""
    open_request = RefillRequest.objects.filter(prescription=OuterRef("pk"), status__in=OPEN_STATUSES)
    return (Prescription.objects.filter(status__in=["active", "expired", "completed"])
            .annotate(last_fill=Max("fills__fill_date"))
            .filter(last_fill__isnull=False, last_fill__lte=today + timedelta(days=lookahead),
                    last_fill__gte=today - timedelta(days=LAST_FILL_HORIZON_DAYS))
            .exclude(Exists(open_request))
            .order_by("pk"))


def _reason(today: date) -> str:
    return f"Supply runs out within the look-ahead window (detection {today})"


# --- SQL ------------------------------------------------------------------------------------------

class _Dialect:
    """The few date expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def date(self, param: str) -> str:
        return f"CAST({param} AS date)" if self.pg else f"date({param})"

    def plus_days(self, day: str, days: str) -> str:
        return f"({day} + CAST({days} AS integer))" if self.pg else f"date({day}, ({days}) || ' days')"

    def plus_months(self, day: str, months: int) -> str:
        # Calendar months clamped to the month's last day, as pharmacy.rules.supply.add_months.
        if self.pg:
            return f"CAST({day} + interval '{months} months' AS date)"
        plain = f"date({day}, '+{months} months')"
        return (f"(CASE WHEN strftime('%%d', {plain}) = strftime('%%d', {day}) THEN {plain} "
                f"ELSE date({day}, 'start of month', '+{months + 1} months', '-1 day') END)")


def _in(values) -> str:
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def _due_ctes(d: _Dialect, policy: EligibilityPolicy) -> str:
    """CTEs ``cand`` (the engine's candidates) and ``due`` (with run_out and kind) for one id range.

    Named parameters: %(low)s, %(high)s (id range, high exclusive), %(today)s, %(lookahead)s."""
    rx, fill, drug, req = (Prescription._meta.db_table, Fill._meta.db_table, Drug._meta.db_table,
                           RefillRequest._meta.db_table)
    today = d.date("%(today)s")
    counted = _in(COUNTED_FILL_STATUSES)
    iii_iv = f"c.dea_schedule IN {_in(sorted(CONTROLLED_III_IV))}"
    six_months = d.plus_months("c.written_date", SIX_MONTHS)  # 21 CFR 1306.22(a)
    default_until = (f"(CASE WHEN {iii_iv} THEN {six_months} "
                     f"ELSE {d.plus_days('c.written_date', str(int(policy.non_controlled_expiry_days)))} END)")
    expiry = f"COALESCE(c.expiration_date, {default_until})"
    until = f"(CASE WHEN {iii_iv} AND {six_months} < {expiry} THEN {six_months} ELSE {expiry} END)"
    # PQA carry-over, closed form: run-out = max over counted fills i of (date_i + sum of the days
    # supply of fill i and of every later fill). Same-day ties give the same maximum in any order.
    later_supply = (f"SUM(CASE WHEN f.status IN {counted} THEN f.days_supply ELSE 0 END) OVER "
                    "(PARTITION BY f.prescription_id ORDER BY f.fill_date DESC ROWS UNBOUNDED PRECEDING)")
    return f"""
    fw AS (
        SELECT f.prescription_id, f.fill_date, f.status IN {counted} AS counted, {later_supply} AS later_supply
        FROM "{fill}" f
        WHERE f.prescription_id >= %(low)s AND f.prescription_id < %(high)s
    ),
    fs AS (
        SELECT prescription_id, MAX(fill_date) AS last_fill,
               MAX(CASE WHEN counted THEN {d.plus_days('fill_date', 'later_supply')} END) AS run_out,
               SUM(CASE WHEN counted THEN 1 ELSE 0 END) AS n_fills
        FROM fw GROUP BY prescription_id
    ),
    cand AS (
        SELECT p.id, p.patient_id, p.pharmacy_id, p.prescriber_id, p.status, p.dea_schedule,
               p.refills_authorized, p.refills_remaining, p.written_date, p.expiration_date,
               dr.is_urgent, fs.run_out, fs.n_fills
        FROM "{rx}" p
        JOIN fs ON fs.prescription_id = p.id
        JOIN "{drug}" dr ON dr.id = p.drug_id
        WHERE p.id >= %(low)s AND p.id < %(high)s
          AND p.status IN {_in(("active", *sorted(RENEWABLE_STATUSES)))}
          AND fs.last_fill <= {d.plus_days(today, '%(lookahead)s')}
          AND fs.last_fill >= {d.plus_days(today, str(-LAST_FILL_HORIZON_DAYS))}
          AND NOT EXISTS (SELECT 1 FROM "{req}" r WHERE r.prescription_id = p.id
                          AND r.status IN {_in(OPEN_STATUSES)})
    ),
    due AS (
        SELECT c.*,
          CASE WHEN c.status <> 'active'
                 OR c.dea_schedule = '2'
                 OR c.refills_remaining <= 0
                 OR ({iii_iv} AND ({today} > {six_months}
                                   OR c.refills_authorized > {MAX_REFILLS_III_IV}
                                   OR (c.n_fills - 1 >= {MAX_REFILLS_III_IV} AND c.refills_remaining > 0)))
                 OR ({today} > {until} AND NOT ({iii_iv} AND c.expiration_date IS NULL))
                 OR ({today} <= {until} AND {until} < c.run_out)
               THEN 'renewal' ELSE 'refill' END AS kind
        FROM cand c
        WHERE c.run_out IS NOT NULL
          AND c.run_out <= {d.plus_days(today, '%(lookahead)s')}
          AND c.run_out >= {d.plus_days(today, str(-MAX_DAYS_OVERDUE))}
    ),
    counts AS (
        SELECT (SELECT COUNT(*) FROM cand) AS examined, COUNT(*) AS due,
               SUM(CASE WHEN kind = 'renewal' THEN 1 ELSE 0 END) AS renewals
        FROM due
    )"""


def _request_columns() -> tuple[list[str], list[str], dict]:
    """Columns of a new request and the SELECT expression over ``due`` for each; every column
    the engine does not compute takes its field default (so new columns follow)."""
    computed = {
        "prescription_id": "due.id", "patient_id": "due.patient_id", "pharmacy_id": "due.pharmacy_id",
        "prescriber_id": "due.prescriber_id", "kind": "due.kind", "is_urgent": "due.is_urgent",
        "run_out_date": "due.run_out", "source": "%(source)s", "status": "%(status)s",
        "created_at": "%(now)s", "updated_at": "%(now)s",
    }
    params = {"source": RequestSource.DETECTION.value, "status": RefillStatus.RECEIVED.value}
    cols, exprs = [], []
    for f in RefillRequest._meta.concrete_fields:
        if f.primary_key:
            continue
        cols.append(f.column)
        if f.column in computed:
            exprs.append(computed[f.column])
        else:
            key = f"default_{f.column}"
            params[key] = f.get_db_prep_save(f.get_default(), connection)
            exprs.append(f"%({key})s")
    return cols, exprs, params


def _history_columns(source: str) -> tuple[list[str], list[str], dict]:
    """Columns of the history row of each new request, read from ``source`` (the new rows)."""
    hist = RefillRequest.history.model
    request_cols = {f.column for f in RefillRequest._meta.concrete_fields}
    special = {"history_date": "%(now)s", "history_change_reason": "%(reason)s", "history_type": "'+'",
               "history_user_id": "%(user_id)s"}
    cols, exprs, params = [], [], {}
    for f in hist._meta.concrete_fields:
        if f.primary_key:
            continue
        cols.append(f.column)
        if f.column in request_cols:
            exprs.append(f"{source}.{f.column}")
        elif f.column in special:
            exprs.append(special[f.column])
        else:
            key = f"hdefault_{f.column}"
            params[key] = f.get_db_prep_save(f.get_default(), connection)
            exprs.append(f"%({key})s")
    return cols, exprs, params


def _quoted(cols) -> str:
    return ", ".join(f'"{c}"' for c in cols)


def id_ranges(chunk: int = SQL_CHUNK) -> list[tuple[int, int]]:
    """The prescription id ranges [low, high) of ``chunk`` ids each that cover every prescription:
    the units detection runs in, one after another (``detect_refills``) or as one task each spread
    over the task workers (refills.tasks.detect_refills_fanout)."""
    bounds = Prescription.objects.aggregate(low=Min("pk"), high=Max("pk"))
    low, high = bounds["low"], bounds["high"]
    if low is None:
        return []
    return [(start, start + chunk) for start in range(low, high + 1, chunk)]


def detect_refills(*, today: date | None = None, lookahead: int | None = None, dry_run: bool = False,
                   progress=None, chunk: int = SQL_CHUNK, id_range: tuple[int, int] | None = None,
                   ) -> DetectionResult:
    """Detection over every prescription, or over the ids ``id_range`` = [low, high) only (one
    task's share). Idempotent: a prescription with an open request is not a candidate, and a
    concurrent run's rows conflict on the one-open-request index and are skipped, so running a
    range twice, or two ranges that overlap, opens each request once."""
    today = today or timezone.localdate()
    lookahead = lookahead_days() if lookahead is None else lookahead
    policy = eligibility_policy()
    result = DetectionResult()
    d = _Dialect(connection.vendor)
    ctes = _due_ctes(d, policy)
    req_table, hist_table = RefillRequest._meta.db_table, RefillRequest.history.model._meta.db_table
    now = timezone.now()
    params = {"today": connection.ops.adapt_datefield_value(today), "lookahead": int(lookahead),
              "reason": _reason(today), "now": connection.ops.adapt_datetimefield_value(now)}
    if dry_run:
        statements = [f"WITH {ctes} SELECT examined, due, renewals FROM counts"]
    else:
        user = actor_user(DETECTION)
        params["user_id"] = user.pk
        rcols, rexprs, rparams = _request_columns()
        params.update(rparams)
        insert = (f'INSERT INTO "{req_table}" ({_quoted(rcols)}) SELECT {", ".join(rexprs)} FROM due '
                  "WHERE true ORDER BY due.id ON CONFLICT DO NOTHING")
        if d.pg:
            hcols, hexprs, hparams = _history_columns("ins")
            params.update(hparams)
            statements = [
                f"WITH {ctes}, ins AS ({insert} RETURNING *), "
                f'hist AS (INSERT INTO "{hist_table}" ({_quoted(hcols)}) SELECT {", ".join(hexprs)} FROM ins '
                "RETURNING id) "
                "SELECT counts.examined, counts.due, counts.renewals, hist.id FROM counts LEFT JOIN hist ON true"]
        else:
            hcols, hexprs, hparams = _history_columns("r")
            params.update(hparams)
            statements = None
    if id_range is None:
        ranges = id_ranges(chunk)
    else:
        low, high = id_range
        ranges = [(start, min(start + chunk, high)) for start in range(low, high, chunk)]
    with connection.cursor() as cur:
        for start, end in ranges:
            chunk_params = {**params, "low": start, "high": end}
            examined_before = result.examined
            if statements is not None:
                ids = _run_chunk(cur, statements[0], chunk_params, result)
            else:
                ids = _run_chunk_sqlite(cur, ctes, insert, hist_table, hcols, hexprs, chunk_params, result)
            result.request_ids.extend(ids)
            if progress:
                progress.advance(result.examined - examined_before)
    result.opened = len(result.request_ids)
    result.skipped_open = result.due - result.opened if not dry_run else 0
    return result


def _count(result: DetectionResult, examined, due, renewals) -> None:
    result.examined += int(examined or 0)
    result.due += int(due or 0)
    if renewals:
        result.by_kind[RequestKind.RENEWAL.value] += int(renewals)
    if (due or 0) - (renewals or 0):
        result.by_kind[RequestKind.REFILL.value] += int(due) - int(renewals or 0)


def _run_chunk(cur, sql: str, params: dict, result: DetectionResult) -> list[int]:
    with transaction.atomic():
        cur.execute(sql, params)
        rows = cur.fetchall()
    _count(result, *rows[0][:3])
    return [row[3] for row in rows if len(row) > 3 and row[3] is not None]


def _run_chunk_sqlite(cur, ctes, insert, hist_table, hcols, hexprs, params, result) -> list[int]:
    with transaction.atomic():
        cur.execute(f"WITH {ctes} SELECT examined, due, renewals FROM counts", params)
        _count(result, *cur.fetchone())
        cur.execute(f"WITH {ctes} {insert} RETURNING id", params)
        ids = sorted(row[0] for row in cur.fetchall())
        if ids:
            # The new rows are exactly this run's detection rows stamped ``now`` in the id range.
            cur.execute(
                f'INSERT INTO "{hist_table}" ({_quoted(hcols)}) SELECT {", ".join(hexprs)} '
                f'FROM "{RefillRequest._meta.db_table}" r WHERE r.id >= %(first)s AND r.id <= %(last)s '
                "AND r.source = %(source)s AND r.created_at = %(now)s",
                {**params, "first": ids[0], "last": ids[-1]})
    return ids


# --- Python reference -----------------------------------------------------------------------------

def detect_refills_reference(*, today: date | None = None, lookahead: int | None = None,
                             ) -> dict[int, tuple[date, str]]:
    """The Python engine the SQL replaced (read only): {prescription id: (run-out date, kind)} of
    every due prescription, from compute_run_out_and_kind over candidate_prescriptions."""
    today = today or timezone.localdate()
    lookahead = lookahead_days() if lookahead is None else lookahead
    policy = eligibility_policy()
    due_rows: dict[int, tuple[date, str]] = {}
    columns = ("pk", "status", "dea_schedule", "refills_authorized", "refills_remaining", "written_date",
               "expiration_date", "days_supply", "patient__species")
    base = candidate_prescriptions(today, lookahead)
    bounds = Prescription.objects.aggregate(low=Min("pk"), high=Max("pk"))
    for low in range(bounds["low"] or 0, (bounds["high"] or -1) + 1, CHUNK):
        rows = list(base.filter(pk__gte=low, pk__lt=low + CHUNK).values(*columns))
        if not rows:
            continue
        fills = defaultdict(list)
        for f in (Fill.objects.filter(prescription_id__in=[r["pk"] for r in rows], status__in=COUNTED_FILL_STATUSES)
                  .order_by("prescription_id", "fill_date").values_list("prescription_id", "fill_date", "days_supply")):
            fills[f[0]].append(FillRecord(f[1], f[2]))
        for row in rows:
            records = tuple(fills.get(row["pk"], ()))
            facts = PrescriptionFacts(
                status=row["status"], dea_schedule=row["dea_schedule"], refills_authorized=row["refills_authorized"],
                refills_remaining=row["refills_remaining"], written_date=row["written_date"],
                expiration_date=row["expiration_date"], days_supply=row["days_supply"],
                last_fill=records[-1] if records else None, fills=records,
                is_veterinary=row["patient__species"] != "human")
            due = compute_run_out_and_kind(prescription=facts, today=today, lookahead_days=lookahead, policy=policy)
            if due is not None:
                due_rows[row["pk"]] = due
    return due_rows


def pending_evaluation(low: int, high: int) -> list[int]:
    """Ids of the detection requests still received (not evaluated) for prescriptions in [low, high)."""
    return list(RefillRequest.objects.filter(prescription_id__gte=low, prescription_id__lt=high,
                                             source=RequestSource.DETECTION, status=RefillStatus.RECEIVED)
                .order_by("pk").values_list("pk", flat=True))


def evaluate_opened(request_ids: list[int], *, progress=None) -> dict[str, int]:
    """Eligibility + protocol for newly opened requests (one at a time, each in its own transaction)."""
    from pharmacy.errors import TransitionNotAllowed

    from .services import refill_request_evaluate

    outcome: dict[str, int] = defaultdict(int)
    for pk in request_ids:
        try:
            req = refill_request_evaluate(request_id=pk)
            outcome[req.status] += 1
        except TransitionNotAllowed:
            outcome["already_evaluated"] += 1
        if progress:
            progress.advance()
    return dict(outcome)
