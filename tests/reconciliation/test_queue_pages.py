"""Queue pages cost the same queries whatever the queue's length (issue 17), first page and a
deeper one, below and past the count cap (pharmacy.pagination: ids in the queue's index order,
rows by id, capped counts). Page size and cap are made small so two sizes span pages and the cap
without seeding 100,000 rows (bench/pages.py does that)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pharmacy import pagination
from reconciliation import services as recon_services

from .conftest import a03

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(pagination, "PER_PAGE", 3)
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)


def queries(client, url) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response


def test_reconciliation_queue_same_queries_at_two_sizes_and_deep_pages(client, pharmacist, linked_ada):
    client.force_login(pharmacist)
    for n in range(2):
        recon_services.ingest(channel="mllp", payload=a03(control_id=f"P-{n}", meds=(f"WARFARIN {n + 1}MG DAILY",)))
    small, _ = queries(client, "/reconciliation/")
    for n in range(2, 10):
        recon_services.ingest(channel="mllp", payload=a03(control_id=f"P-{n}", meds=(f"WARFARIN {n + 1}MG DAILY",)))
    large, _ = queries(client, "/reconciliation/")
    deep, page = queries(client, "/reconciliation/?page=3")
    assert small == large == deep, (small, large, deep)
    rows = page.context["page"].object_list
    assert len(rows) == 3 and all(t.total >= 1 for t in rows)  # counts for the page's tasks




def test_reconciliation_queue_filters_a_person_would_use(client, pharmacist, linked_ada):
    """Issue 11 item 6: status chips with counts, a patient/drug search and plain toggles in the
    URL, no "---------", no "Unknown"; filtering keeps the page's query count."""
    from reconciliation.models import ReconciliationTask

    client.force_login(pharmacist)
    for n in range(2):
        recon_services.ingest(channel="mllp", payload=a03(control_id=f"F-{n}", meds=(f"WARFARIN {n + 1}MG DAILY",)))
    tasks = ReconciliationTask.objects.all()
    assert tasks.count() >= 1
    patient = tasks.first().patient
    plain, response = queries(client, "/reconciliation/")
    html = response.content.decode()
    assert "---------" not in html and "Unknown" not in html
    open_chip = html[html.index('aria-label="Status"'):]
    assert f'Open <span class="count">{tasks.exclude(status="completed").count()}</span>' in open_chip
    searched, response = queries(client, f"/reconciliation/?q={patient.last_name}")
    assert searched == plain, (searched, plain)
    assert {t.pk for t in response.context["page"].object_list} == set(tasks.exclude(status="completed")
                                                                       .values_list("pk", flat=True))
    _, response = queries(client, "/reconciliation/?q=warfarin")
    assert len(response.context["page"].object_list) >= 1
    _, response = queries(client, "/reconciliation/?q=nosuchdrugorname")
    assert list(response.context["page"].object_list) == []
    _, response = queries(client, "/reconciliation/?show=completed")
    assert all(t.status == "completed" for t in response.context["page"].object_list)
    _, response = queries(client, "/reconciliation/?discharge=1&q=warfarin")
    body = response.content.decode()
    assert 'name="discharge" value="1" checked' in body and 'value="warfarin"' in body
    assert all(t.kind == "discharge" for t in response.context["page"].object_list)
