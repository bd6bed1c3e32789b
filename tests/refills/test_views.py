"""Queue and request pages: urgency order, decisions through forms, fixed query counts."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import DrugFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def test_queue_orders_urgent_first_then_run_out(client, pharmacist, make_request):
    today = timezone.localdate()
    late = make_request(run_out_date=today + timedelta(days=5))
    soon = make_request(run_out_date=today + timedelta(days=1))
    insulin = PrescriptionFactory(
        drug=DrugFactory(name="insulin glargine", therapeutic_class="insulin", is_urgent=True)
    )
    urgent = make_request(prescription=insulin, run_out_date=today + timedelta(days=6), is_urgent=True)
    make_request(status="denied")
    client.force_login(pharmacist)
    page = client.get("/refills/")
    assert [r.pk for r in page.context["page"].object_list] == [urgent.pk, soon.pk, late.pk]


def test_approve_from_page_then_message(client, pharmacist, make_request):
    req = make_request()
    client.force_login(pharmacist)
    response = client.post(f"/refills/{req.pk}/approve/", {"note": "ok"}, follow=True)
    assert "authorization is on its way" in response.content.decode()
    req.refresh_from_db()
    assert req.status == "approved"


def test_deny_without_reason_shows_error_and_changes_nothing(client, pharmacist, make_request):
    req = make_request()
    client.force_login(pharmacist)
    response = client.post(f"/refills/{req.pk}/deny/", {"reason_code": "AF", "reason": ""}, follow=True)
    assert "reason is required" in response.content.decode()
    req.refresh_from_db()
    assert req.status == "needs_review"


def test_bulk_approve_only_protocol_suggested(client, pharmacist, make_request):
    suggested = make_request(protocol_suggestion="approve", protocol_mode="shadow")
    other = make_request(protocol_suggestion="refer_to_prescriber")
    client.force_login(pharmacist)
    client.post("/refills/bulk-approve/", {"ids": [suggested.pk, other.pk]})
    suggested.refresh_from_db()
    other.refresh_from_db()
    assert (suggested.status, other.status) == ("approved", "needs_review")


@pytest.mark.parametrize("page", ["queue", "detail"])
def test_pages_cost_fixed_queries(client, pharmacist, make_request, page):
    client.force_login(pharmacist)
    counts = []
    for size in (1, 6):
        reqs = [make_request() for _ in range(size)]
        for r in reqs:
            FillFactory.create_batch(size, prescription=r.prescription)
        url = "/refills/" if page == "queue" else f"/refills/{reqs[-1].pk}/"
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_allergy_conflict_of_a_new_prescription_is_flagged_in_queue_and_request_page(client, pharmacist, make_request):
    from pharmacy.models import Allergy
    from tests.factories import PatientFactory

    patient = PatientFactory()
    Allergy.objects.create(patient=patient, substance="Lisinopril", reaction="angioedema", severity="severe")
    flagged = make_request(prescription=PrescriptionFactory(patient=patient, refills_remaining=3))
    clean = make_request()
    client.force_login(pharmacist)
    queue = client.get("/refills/").content.decode()
    assert queue.count('data-testid="allergy-flag"') == 1 and "allergy: Lisinopril" in queue
    assert "allergy:" in client.get(f"/refills/{flagged.pk}/").content.decode()
    assert "allergy:" not in client.get(f"/refills/{clean.pk}/").content.decode()
