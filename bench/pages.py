"""Queue pages at two sizes: 100 and 100,000 open items per queue, on PostgreSQL.

    python bench/pages.py                      # 100 and 100,000 (a few minutes on 2 cores)
    python bench/pages.py --sizes 100,20000    # quicker
    python bench/pages.py --requests 15

Seeds the demo once into a template database (``rxhub_bench_pages_seed``: migrate + seed_demo),
then clones it for each run (``CREATE DATABASE … TEMPLATE``) and migrates the clone. Open items are
copied in SQL from one demo row of each queue (refill request, PA case, reconciliation task with
3 discrepancies; each copy on its own prescription, as the one-open-per-prescription rules need).

For each size it prints, per page (the login page as the baseline, then the refill, PA and
reconciliation queues, first page and page 1,000), the median and p95 server time (Django's test
client in process: middleware, view, queries, template) and the number of queries, and the p95
as a multiple of the login page's. Targets (issue 17): p95 ≤ 15× login; query counts equal at
both sizes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BASE = os.environ.get("BENCH_PG", "postgres://rxhub:rxhub@127.0.0.1:5432")
SEED_DB, RUN_DB = "rxhub_bench_pages_seed", "rxhub_bench_pages_run"
TARGET = 15


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


def prepare() -> None:
    env = {**os.environ, "DJANGO_HTTPS": "0"}
    if not exists(SEED_DB):
        print(f"Seeding the demo into {SEED_DB} (once) …", flush=True)
        admin(f'CREATE DATABASE "{SEED_DB}"')
        env["DATABASE_URL"] = f"{BASE}/{SEED_DB}"
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    admin(f'DROP DATABASE IF EXISTS "{RUN_DB}"')
    admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{SEED_DB}"')


def copy_rows(model, template_id: int, count: int, overrides: dict[str, str]) -> int:
    """INSERT count copies of one row (SQL expressions over g = 1..count for some columns); the
    id of the first copy (ids are consecutive within one INSERT … SELECT here)."""
    from django.db import connection

    cols = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    select = ", ".join(overrides.get(c, f't."{c}"') for c in cols).replace("%", "%%")
    table = model._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                    f'SELECT {select} FROM "{table}" t, generate_series(1, %s) g WHERE t.id = %s ORDER BY g '
                    "RETURNING id", [count, template_id])
        return min(row[0] for row in cur.fetchall())


def grow(target: int, done: dict) -> None:
    """Add open items so each queue has ``target`` open ones."""
    from django.db import connection, transaction

    from pharmacy.models import Prescription
    from priorauth.choices import OPEN_STATUSES as PA_OPEN
    from priorauth.models import PACase
    from reconciliation.choices import OPEN_TASK_STATUSES
    from reconciliation.models import Discrepancy, ReconciliationTask
    from refills.models import RefillRequest
    from refills.selectors import DEFAULT_QUEUE_STATUSES

    with transaction.atomic():
        n = target - RefillRequest.objects.filter(status__in=DEFAULT_QUEUE_STATUSES).count()
        if n > 0:
            t = RefillRequest.objects.filter(status__in=DEFAULT_QUEUE_STATUSES).order_by("pk").first()
            first_rx = copy_rows(Prescription, t.prescription_id, n, {"rx_number": "'PB' || g"})
            copy_rows(RefillRequest, t.pk, n, {
                "prescription_id": f"{first_rx} + g - 1", "status": "'needs_review'",
                "is_urgent": "(g % 10 = 0)", "run_out_date": "CURRENT_DATE + (g % 30)",
                "created_at": "now() - g * interval '1 second'", "updated_at": "now()"})
        n = target - PACase.objects.filter(status__in=PA_OPEN).count()
        if n > 0:
            t = PACase.objects.filter(status__in=PA_OPEN).order_by("pk").first()
            first_rx = copy_rows(Prescription, t.prescription_id, n, {"rx_number": "'PP' || g"})
            copy_rows(PACase, t.pk, n, {
                "prescription_id": f"{first_rx} + g - 1",
                "decision_due_at": "now() + (g % 500) * interval '1 hour'",
                "created_at": "now() - g * interval '1 second'", "updated_at": "now()"})
        n = target - ReconciliationTask.objects.filter(status__in=OPEN_TASK_STATUSES).count()
        if n > 0:
            t = ReconciliationTask.objects.filter(status__in=OPEN_TASK_STATUSES, discrepancies__isnull=False
                                                  ).order_by("pk").first()
            first_task = copy_rows(ReconciliationTask, t.pk, n, {
                "priority_rank": "g % 3", "created_at": "now() - g * interval '1 second'"})
            d = Discrepancy.objects.filter(task=t).order_by("pk").first()
            copy_rows(Discrepancy, d.pk, 3 * n, {"task_id": f"{first_task} + (g - 1) / 3"})
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    done["size"] = target


def measure(client, url: str, requests: int) -> tuple[float, float, int]:
    from django.db import connection

    count = 0

    def counter(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    for _ in range(3):  # warm-up (templates compiled, caches filled)
        assert client.get(url).status_code == 200, url
    times, queries = [], []
    for _ in range(requests):
        count = 0
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries.append(count)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95, max(queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    prepare()
    os.environ["DATABASE_URL"] = f"{BASE}/{RUN_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
    os.environ["DJANGO_HTTPS"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    staff = Client()
    staff.force_login(get_user_model().objects.get(username="pharmacist"))
    anonymous = Client()
    pages = [("login", anonymous, reverse("login"))]
    for name, url in (("refills", "/refills/"), ("PA", "/priorauth/"), ("reconciliation", "/reconciliation/")):
        pages += [(f"{name} p1", staff, url), (f"{name} p1000", staff, url + "?page=1000")]
    print(f"{'open items':>10} {'page':<20} {'median ms':>9} {'p95 ms':>8} {'queries':>7} {'p95 ÷ login':>11}")
    print("-" * 70)
    results, done = {}, {}
    for size in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        grow(size, done)
        print(f"{size:>10,} {'(seed)':<20} {(time.perf_counter() - started) * 1000:>9.0f}", flush=True)
        login_p95 = None
        for name, client, url in pages:
            median, p95, queries = measure(client, url, args.requests)
            login_p95 = login_p95 or p95
            results[(size, name)] = (median, p95, queries)
            print(f"{size:>10,} {name:<20} {median:>9.1f} {p95:>8.1f} {queries:>7} {p95 / login_p95:>10.1f}x",
                  flush=True)
    sizes = sorted({s for s, _ in results})
    print()
    print("| page | " + " | ".join(f"{s:,} open: median / p95 ms (queries, p95 ÷ login)" for s in sizes)
          + " | queries equal |")
    print("|---|" + "---|" * len(sizes) + "---|")
    ok = True
    for name, _, _ in pages:
        cells, qs = [], set()
        for s in sizes:
            median, p95, queries = results[(s, name)]
            cells.append(f"{median:.1f} / {p95:.1f} ({queries}, {p95 / results[(s, 'login')][1]:.1f}×)")
            qs.add(queries)
        ok &= len(qs) == 1
        print(f"| {name} | " + " | ".join(cells) + f" | {'yes' if len(qs) == 1 else 'NO'} |")
    print(f"target: p95 ≤ {TARGET}× the login page's; query counts equal at every size: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
