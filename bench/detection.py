"""Refill detection benchmark on PostgreSQL: 100k and 1M active prescriptions.

    python bench/detection.py                       # 100k and 1M (about 5 minutes on 2 cores)
    python bench/detection.py --sizes 20000         # quicker
    BENCH_DATABASE_URL=postgres://u:p@host/db python bench/detection.py

Uses its own database (default ``rxhub_bench`` on 127.0.0.1, created when missing; the role needs
CREATEDB) and wipes its prescriptions, fills and refill requests before each size. Rows are
generated in SQL (INSERT … SELECT generate_series, copying a template row so new columns follow).

For each size it prints, from the same run:
- bare read: the engine's two queries per chunk (candidates + their fills), no rules, no writes —
  the floor any set-based engine pays;
- dry run: the same plus the pure run-out/kind rules for every prescription;
- detection: the real run (bulk insert of requests + their history rows);
- second run: the idempotent re-run (finds the open requests, opens nothing);
- naive: one fills query per prescription (the shape the engine avoids), timed on a sample and
  scaled to the size — the baseline the ratio is against.
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


def bare_read(today, lookahead):
    from django.db.models import Max, Min

    from pharmacy.models import Fill, Prescription
    from refills.detection import CHUNK, candidate_prescriptions

    base, rows_seen = candidate_prescriptions(today, lookahead), 0
    bounds = Prescription.objects.aggregate(low=Min("pk"), high=Max("pk"))
    for low in range(bounds["low"] or 0, (bounds["high"] or -1) + 1, CHUNK):
        rows = list(base.filter(pk__gte=low, pk__lt=low + CHUNK).values("pk", "status", "days_supply",
                                                                        "expiration_date"))
        rows_seen += len(rows)
        list(Fill.objects.filter(prescription_id__in=[r["pk"] for r in rows]).values_list(
            "prescription_id", "fill_date", "days_supply"))
    return rows_seen


def naive(today, lookahead, sample: int):
    from pharmacy.models import Fill
    from refills.detection import candidate_prescriptions

    ids = list(candidate_prescriptions(today, lookahead).values_list("pk", flat=True)[:sample])
    for pk in ids:
        list(Fill.objects.filter(prescription_id=pk).values_list("fill_date", "days_supply"))
    return len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Comma-separated prescription counts.")
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

    from refills.detection import detect_refills

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    today, lookahead = timezone.localdate(), 7
    header = (
        f"{'prescriptions':>13} {'step':<12} {'seconds':>8} {'queries':>7} {'rows/s':>10} {'opened':>8} {'vs naive':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        gen_started = time.perf_counter()
        generate(size)
        print(f"{size:>13,} {'generate':<12} {time.perf_counter() - gen_started:>8.1f}", flush=True)
        naive_s, naive_q, sampled = measure(lambda: naive(today, lookahead, NAIVE_SAMPLE))
        naive_total = naive_s / max(sampled, 1) * size
        steps = [
            ("bare read", lambda: bare_read(today, lookahead)),
            ("dry run", lambda: detect_refills(today=today, lookahead=lookahead, dry_run=True)),
            ("detection", lambda: detect_refills(today=today, lookahead=lookahead)),
            ("second run", lambda: detect_refills(today=today, lookahead=lookahead)),
        ]
        for name, fn in steps:
            seconds, queries, result = measure(fn)
            opened = getattr(result, "opened", "")
            print(f"{size:>13,} {name:<12} {seconds:>8.2f} {queries:>7} {size / seconds:>10,.0f} {opened!s:>8} "
                  f"{naive_total / seconds:>7.1f}x", flush=True)
        print(f"{size:>13,} {'naive (est.)':<12} {naive_total:>8.2f} {int(naive_q / max(sampled, 1) * size):>7} "
              f"{size / naive_total:>10,.0f} {'':>8} {'1.0x':>8}   (timed on {sampled:,}, scaled)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
