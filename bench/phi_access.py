"""Cost of the PHI access log on a page: the refill queue (50 patients → 50 log rows, one INSERT)
and a patient page (1 row), timed with and without audit.middleware.PhiAccessMiddleware.

    python bench/phi_access.py                  # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgres://rxhub:rxhub@127.0.0.1:5432/rxhub_bench_phi python bench/phi_access.py

Prints the median and 90th percentile over ROUNDS requests of each kind (same process, warm,
with and without alternating request by request)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "40"))


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="rxhub-bench-phi-")
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
    if url.startswith("postgres"):
        sys.path.insert(0, str(ROOT / "bench"))
        from detection import ensure_database

        ensure_database(url)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "pharmacy.settings",
            "DJANGO_HTTPS": "0",
            "AXES_ENABLED": "0",
            "LOG_LEVEL": "ERROR",
        }
    )
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from audit.models import PhiAccess
    from refills.models import RefillRequest
    from tests.factories import PrescriptionFactory

    user, _ = get_user_model().objects.get_or_create(username="bench-pharmacist")
    user.groups.add(Group.objects.get(name="pharmacist"))
    if RefillRequest.objects.filter(status="needs_review").count() < 50:
        for _ in range(50):
            rx = PrescriptionFactory()
            RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    patient_id = RefillRequest.objects.first().patient_id
    without = [m for m in settings.MIDDLEWARE if m != "audit.middleware.PhiAccessMiddleware"]

    def timed(path: str) -> tuple[list[float], list[float]]:
        """Alternate without/with the middleware request by request, so load drift hits both."""
        clients = {}
        for key, middleware in (("off", without), ("on", list(settings.MIDDLEWARE))):
            with override_settings(MIDDLEWARE=middleware):
                clients[key] = Client()
                clients[key].force_login(user)
                clients[key].get(path)  # warm
        out = {"off": [], "on": []}
        for _ in range(ROUNDS):
            for key, middleware in (("off", without), ("on", list(settings.MIDDLEWARE))):
                with override_settings(MIDDLEWARE=middleware):
                    start = time.perf_counter()
                    assert clients[key].get(path).status_code == 200
                    out[key].append((time.perf_counter() - start) * 1000)
        return out["off"], out["on"]

    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, {ROUNDS} requests each")
    print(
        f"{'page':<22}{'log rows/request':>18}{'without (ms) p50/p90':>24}{'with (ms) p50/p90':>22}{'added p50':>12}"  # noqa: E501
    )
    for label, path, rows in (
        ("refill queue", "/refills/", 50),
        ("patient page", f"/patients/{patient_id}/", 1),
    ):
        before = PhiAccess.objects.count()
        off, on = timed(path)
        written = (PhiAccess.objects.count() - before) / (ROUNDS + 1)
        p = lambda xs: (statistics.median(xs), sorted(xs)[int(len(xs) * 0.9) - 1])  # noqa: E731
        (a50, a90), (b50, b90) = p(off), p(on)
        print(
            f"{label:<22}{written:>18.0f}{a50:>13.1f} / {a90:<8.1f}{b50:>11.1f} / {b90:<8.1f}{b50 - a50:>+10.1f}"  # noqa: E501
        )
        assert round(written) == rows
    return 0


if __name__ == "__main__":
    sys.exit(main())
