"""Queue pages cost the same queries whatever the queue's length (issue 17), first page and a
deeper one, below and past the count cap (pharmacy.pagination: ids in the queue's index order,
rows by id, capped counts). Page size and cap are made small so two sizes span pages and the cap
without seeding 100,000 rows (bench/pages.py does that)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pharmacy import pagination
from refills.models import RefillRequest
from tests.factories import PatientFactory, PrescriberFactory, PrescriptionFactory

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


def refill_requests(n):
    patient, prescriber = PatientFactory(), PrescriberFactory()
    for _ in range(n):
        rx = PrescriptionFactory(patient=patient, prescriber=prescriber, refills_authorized=5, refills_remaining=3)
        RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review",
                                     pharmacy=rx.pharmacy, prescriber=rx.prescriber)


def test_refill_queue_same_queries_at_two_sizes_and_deep_pages(client, pharmacist):
    client.force_login(pharmacist)
    refill_requests(2)
    small, _ = queries(client, "/refills/")
    refill_requests(10)  # 12: four pages, past the count cap
    large, first = queries(client, "/refills/")
    deep, third = queries(client, "/refills/?page=3")
    assert small == large == deep, (small, large, deep)
    assert "5+" in first.content.decode()  # capped chip count
    ordered = list(RefillRequest.objects.filter(status="needs_review")
                   .order_by("-is_urgent", "run_out_date", "created_at", "id").values_list("pk", flat=True))
    assert [r.pk for r in third.context["page"].object_list] == ordered[6:9]
    assert third.context["page"].has_next() and third.context["page"].has_previous()


def test_capped_counts_one_query_exact_below_the_cap(django_assert_num_queries):
    refill_requests(7)
    RefillRequest.objects.filter(pk=RefillRequest.objects.order_by("pk").first().pk).update(status="denied")
    with django_assert_num_queries(1):
        counts = pagination.capped_counts(RefillRequest.objects.all(), field_name="status",
                                          values=["needs_review", "denied", "approved"], cap=10)
    assert counts == {"needs_review": 6, "denied": 1, "approved": 0}
    assert pagination.capped_counts(RefillRequest.objects.all(), field_name="status", values=["needs_review"],
                                    cap=4) == {"needs_review": 5}
    assert pagination.shown(5, cap=4) == "4+" and pagination.shown(4, cap=4) == "4"
