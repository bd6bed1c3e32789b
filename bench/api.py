"""API list speed: GET /api/v1/refill-requests/?status=needs_review beside GET /api/v1/ (the API
root) in the same gunicorn, on PostgreSQL with 100,000 open refill requests.

    python bench/api.py                  # 8 clients, 10 s per endpoint
    python bench/api.py --seconds 5 --clients 4

Uses bench/pages.py's run database (``rxhub_bench_pages_run``), seeding it when missing. Starts
gunicorn (2 workers × 4 threads) on 127.0.0.1, drives it with keep-alive HTTP clients in threads
(token authentication as the demo pharmacist) and prints requests/s, median and p95 latency and
the queries of one request of each endpoint. Target (issue 17): the list ≥ 50 % of the root's
requests/s.
"""
from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TARGET = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def drive(port: int, path: str, token: str, clients: int, seconds: float) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                bad += 1
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.perf_counter() - started
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000 if latencies else 0
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p95, errors


def main() -> int:
    import pages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    url = f"{pages.BASE}/{pages.RUN_DB}"
    fresh = not pages.exists(pages.RUN_DB)
    if fresh:
        pages.prepare()
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="pharmacy.settings", DJANGO_HTTPS="0")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0)
    pages.grow(args.size, {})
    user = get_user_model().objects.get(username="pharmacist")
    token = Token.objects.get_or_create(user=user)[0].key
    from refills.models import RefillRequest

    listed = RefillRequest.objects.filter(status="needs_review").count()
    paths = [("API root", "/api/v1/"), ("refill list", "/api/v1/refill-requests/?status=needs_review")]
    # Queries of one request of each (in process, same code).
    queries = {}
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for name, path in paths:
        count = 0

        def counter(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        client.get(path)
        with connection.execute_wrapper(counter):
            assert client.get(path).status_code == 200, path
        queries[name] = count
    connection.close()
    port = free_port()
    env = {**os.environ, "DJANGO_DEBUG": "0", "DATABASE_CONN_MAX_AGE": "60"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "pharmacy.wsgi", "-w", "2", "--threads", "4",
                               "-b", f"127.0.0.1:{port}", "--log-level", "warning"], cwd=ROOT, env=env,
                              start_new_session=True)
    try:
        wait_for(port)
        print(f"{listed:,} refill requests in needs_review; gunicorn 2 workers × 4 threads; {args.clients} clients, "
              f"{args.seconds:g} s each")
        print(f"{'endpoint':<14} {'req/s':>8} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'errors':>7}")
        results = {}
        for name, path in paths:
            drive(port, path, token, args.clients, 1.5)  # warm-up
            rps, median, p95, errors = drive(port, path, token, args.clients, args.seconds)
            results[name] = rps
            print(f"{name:<14} {rps:>8.1f} {median:>10.1f} {p95:>8.1f} {queries[name]:>8} {errors:>7}", flush=True)
        share = results["refill list"] / results["API root"]
        print(f"refill list ÷ API root: {share:.0%} of the root's requests/s (target ≥ {TARGET:.0%})")
        print()
        print("| API endpoint | req/s | share of the root's |")
        print("|---|---|---|")
        print(f"| GET /api/v1/ | {results['API root']:.1f} | 100 % |")
        print(f"| GET /api/v1/refill-requests/?status=needs_review | {results['refill list']:.1f} | {share:.0%} |")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
