"""Refill detection benchmark on PostgreSQL: 100k, 300k and 1M prescriptions.

    python bench/detection.py                       # 100k, 300k and 1M (several minutes on 2 cores)
    python bench/detection.py --sizes 100000        # quicker
    BENCH_DATABASE_URL=postgres://u:p@host/db python bench/detection.py

Uses its own database (default ``rxhub_bench`` on 127.0.0.1, created when missing; the role needs
CREATEDB) and wipes its prescriptions, fills and refill requests before each size. Rows are
generated in SQL (INSERT … SELECT generate_series, copying a template row so new columns follow).

For each size it prints, from the same run:
- SQL scan: ONE statement computing the due set over the whole table (no chunks, no writes) —
  the floor of any engine;
- bare insert: ONE INSERT … SELECT of those same due rows into the request table plus their
  history rows, from a temporary table (the write floor); the tables are emptied afterwards;
- python rule: the reference engine (compute_run_out_and_kind over chunked reads), read only;
- detection: the project's engine (refills.detection.detect_refills), statements and chunks;
- second run: the idempotent re-run (opens nothing).
It checks that detection opened exactly the prescriptions, run-out dates and kinds the Python
rule found due (and the SQL scan's count), and prints detection ÷ (scan + insert): target ≤ 2×.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://rxhub:rxhub@127.0.0.1:5432/rxhub_bench"
NAIVE_SAMPLE = 3000


def ensure_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column != "id"]


def insert_copies(model, template_id: int, count: int, overrides: dict[str, str]) -> None:
    """INSERT count copies of one row, with SQL expressions (over g = 1..count) for some columns."""
    from django.db import connection

    cols = columns(model)
    select = ", ".join(overrides.get(c, f't."{c}"') for c in cols).replace("%", "%%")
    table = model._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                    f'SELECT {select} FROM "{table}" t, generate_series(1, %s) g WHERE t.id = %s', [count, template_id])


def generate(size: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from pharmacy.models import Drug, Facility, Fill, Patient, Pharmacy, Prescriber, Prescription
    from refills.models import RefillRequest
    from tests.factories import FillFactory, PrescriptionFactory

    with connection.cursor() as cur:
        tables = [RefillRequest._meta.db_table, RefillRequest.history.model._meta.db_table, Fill._meta.db_table,
                  Prescription._meta.db_table, Patient._meta.db_table, Prescriber._meta.db_table,
                  Pharmacy._meta.db_table, Facility._meta.db_table, Drug._meta.db_table]
        cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
    today = timezone.localdate()
    with transaction.atomic():
        template_rx = PrescriptionFactory(written_date=today - timedelta(days=200), refills_authorized=5,
                                          refills_remaining=5)
        template_fill = FillFactory(prescription=template_rx)
        patients = max(size // 10, 1)
        insert_copies(Patient, template_rx.patient_id, patients,
                      {"mrn": "'B' || g", "last_name": "'Bench' || g", "phone": "''", "email": "''"})
        first_patient = Patient.objects.filter(mrn="B1").values_list("pk", flat=True).get()
        # Written 120-300 days ago; 30- or 90-day supplies; refills 0..5 remaining; 1 in 25 expiring soon.
        insert_copies(Prescription, template_rx.pk, size, {
            "patient_id": f"{first_patient} + (g % {patients})",
            "rx_number": "'R' || g",
            "written_date": f"DATE '{today}' - (120 + g % 180)",
            "days_supply": "CASE WHEN g % 4 = 0 THEN 90 ELSE 30 END",
            "quantity": "CASE WHEN g % 4 = 0 THEN 90 ELSE 30 END",
            "refills_remaining": "g % 6",
            "expiration_date": f"CASE WHEN g % 25 = 0 THEN DATE '{today}' + 5 ELSE DATE '{today}' + 200 END",
        })
        first_rx = Prescription.objects.filter(rx_number="R1").values_list("pk", flat=True).get()
        # Two fills each, the last one within its days supply (filled on time: about 8 in 30 run
        # out within the 7-day window, as in a pharmacy whose patients refill regularly).
        supply = "CASE WHEN g % 4 = 0 THEN 90 ELSE 30 END"
        for offset in ("0", supply):
            insert_copies(Fill, template_fill.pk, size, {
                "prescription_id": f"{first_rx} + g - 1",
                "fill_date": f"DATE '{today}' - ((g * 7) % ({supply})) - {offset}",
                "days_supply": supply, "quantity": supply,
            })
        Fill.objects.filter(pk=template_fill.pk).delete()
        Prescription.objects.filter(pk=template_rx.pk).delete()
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def measure(fn):
    """Seconds, statements sent to the database, and the result. Counted with an execute wrapper
    (Django's query log keeps only the last 9,000 and would under-count at 1M)."""
    from django.db import connection

    count = 0

    def counter(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - started
    return elapsed, count, result


def scan_sql(today, lookahead) -> tuple[str, dict]:
    """The due set over every prescription in one statement (the engine's CTEs, one range)."""
    from django.db import connection
    from django.db.models import Max, Min

    from pharmacy.models import Prescription
    from refills.conf import eligibility_policy
    from refills.detection import _Dialect, _due_ctes

    bounds = Prescription.objects.aggregate(low=Min("pk"), high=Max("pk"))
    params = {"today": today.isoformat(), "lookahead": lookahead, "low": bounds["low"] or 0,
              "high": (bounds["high"] or 0) + 1}
    return _due_ctes(_Dialect(connection.vendor), eligibility_policy()), params


def sql_scan(today, lookahead) -> int:
    from django.db import connection

    ctes, params = scan_sql(today, lookahead)
    with connection.cursor() as cur:
        cur.execute(f"WITH {ctes} SELECT COUNT(*) FROM due", params)
        return cur.fetchone()[0]


def bare_insert(today, lookahead) -> int:
    """INSERT … SELECT of the due rows (kept in a temporary table, not timed) and their history."""
    from django.db import connection, transaction
    from django.utils import timezone

    from refills.detection import _history_columns, _quoted, _request_columns
    from refills.models import RefillRequest

    ctes, params = scan_sql(today, lookahead)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_due")
        cur.execute(f"CREATE TEMP TABLE bench_due AS WITH {ctes} SELECT * FROM due", params)
        cur.execute("ANALYZE bench_due")
    rcols, rexprs, rparams = _request_columns()
    hcols, hexprs, hparams = _history_columns("ins")
    sql = (f'WITH ins AS (INSERT INTO "{RefillRequest._meta.db_table}" ({_quoted(rcols)}) '
           f'SELECT {", ".join(rexprs)} FROM bench_due due RETURNING *) '
           f'INSERT INTO "{RefillRequest.history.model._meta.db_table}" ({_quoted(hcols)}) '
           f'SELECT {", ".join(hexprs)} FROM ins')
    from pharmacy.actors import actor_user
    from refills.detection import DETECTION

    user_id = actor_user(DETECTION).pk
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, {**rparams, **hparams, "now": timezone.now(), "reason": "bench", "user_id": user_id})
        inserted = cur.rowcount
    elapsed = time.perf_counter() - started
    empty_requests()
    return elapsed, inserted


def empty_requests() -> None:
    from django.db import connection

    from refills.models import RefillRequest

    with connection.cursor() as cur:
        cur.execute(f'TRUNCATE "{RefillRequest._meta.db_table}", "{RefillRequest.history.model._meta.db_table}" '
                    "CASCADE")
        cur.execute("DROP TABLE IF EXISTS bench_due")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000", help="Comma-separated prescription counts.")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        print("The detection benchmark needs PostgreSQL (BENCH_DATABASE_URL).", file=sys.stderr)
        return 2
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
    os.environ.setdefault("DJANGO_HTTPS", "0")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from refills.detection import SQL_CHUNK, detect_refills, detect_refills_reference
    from refills.models import RefillRequest

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    today, lookahead = timezone.localdate(), 7
    header = f"{'prescriptions':>13} {'step':<13} {'seconds':>8} {'statements':>10} {'rows':>8}  note"
    print(header)
    print("-" * (len(header) + 30))
    summary, failed = [], False
    for size in (int(s) for s in args.sizes.split(",")):
        gen_started = time.perf_counter()
        generate(size)
        empty_requests()

        def row(step, seconds, statements="", rows="", note="", size=size):
            print(f"{size:>13,} {step:<13} {seconds:>8.2f} {statements!s:>10} {rows!s:>8}  {note}", flush=True)

        row("generate", time.perf_counter() - gen_started)
        scan_s, scan_q, due = measure(lambda: sql_scan(today, lookahead))
        row("SQL scan", scan_s, scan_q, due, "one statement, the whole table")
        _, _, (insert_s, inserted) = measure(lambda: bare_insert(today, lookahead))
        row("bare insert", insert_s, 1, inserted, "INSERT … SELECT requests + history rows, one statement")
        ref_s, ref_q, expected = measure(lambda: detect_refills_reference(today=today, lookahead=lookahead))
        row("python rule", ref_s, ref_q, len(expected), "reference engine, read only")
        det_s, det_q, result = measure(lambda: detect_refills(today=today, lookahead=lookahead))
        chunks = -(-size // SQL_CHUNK)
        row("detection", det_s, det_q, result.opened, f"{chunks} chunks of {SQL_CHUNK:,} ids")
        again_s, again_q, again = measure(lambda: detect_refills(today=today, lookahead=lookahead))
        row("second run", again_s, again_q, again.opened, "idempotent")
        opened = {r[0]: (r[1], r[2]) for r in RefillRequest.objects.filter(pk__in=result.request_ids)
                  .values_list("prescription_id", "run_out_date", "kind").iterator(chunk_size=20000)}
        same = opened == expected and len(opened) == due and again.opened == 0
        failed |= not same
        ratio = det_s / (scan_s + insert_s)
        print(f"{size:>13,} {'ratio':<13} {ratio:>7.2f}x {'':>10} {'':>8}  detection ÷ (scan + insert); "
              f"target ≤ 2×; same rows as the Python rule: {'yes' if same else 'NO'}", flush=True)
        summary.append((size, det_s, scan_s, insert_s, ratio, det_q, same))
        empty_requests()
    print()
    print("| prescriptions | detection | SQL scan | bare INSERT … SELECT | ratio | statements | same rows |")
    print("|---|---|---|---|---|---|---|")
    for size, det_s, scan_s, insert_s, ratio, det_q, same in summary:
        print(f"| {size:,} | {det_s:.2f} s | {scan_s:.2f} s | {insert_s:.2f} s | {ratio:.2f}× | {det_q} | "
              f"{'yes' if same else 'NO'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
