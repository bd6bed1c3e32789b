"""Queue pages cost the same queries whatever the queue's length (issue 17), first page and a
deeper one, below and past the count cap (pharmacy.pagination: ids in the queue's index order,
rows by id, capped counts). Page size and cap are made small so two sizes span pages and the cap
without seeding 100,000 rows (bench/pages.py does that)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pharmacy import pagination
from priorauth import services as pa_services
from tests.factories import PrescriptionFactory

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


def test_pa_queue_same_queries_at_two_sizes_and_deep_pages(client, pharmacist, pa_rx, make_criteria):
    make_criteria()

    def open_cases(n):
        for _ in range(n):
            pa_services.pa_case_open(prescription_id=PrescriptionFactory(drug=pa_rx.drug).pk, actor=pharmacist)

    client.force_login(pharmacist)
    open_cases(2)
    small, _ = queries(client, "/priorauth/")
    open_cases(8)
    large, _ = queries(client, "/priorauth/")
    deep, page = queries(client, "/priorauth/?page=3")
    assert small == large == deep, (small, large, deep)
    assert len(page.context["page"].object_list) == 3


