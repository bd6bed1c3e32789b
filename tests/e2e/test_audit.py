"""An admin opens a refill request's history timeline, then the PHI access log (where that view
now appears), and downloads the controlled-substance report."""

import csv
import io

import pytest

from tests.factories import DrugFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_timeline_access_log_and_controlled_substance_report(page, login, make_user):
    from refills import services
    from refills.models import RefillRequest

    make_user("admin", username="audrey", is_staff=True, first_name="Audrey", last_name="Admin")
    pharmacist = make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    lorazepam = DrugFactory(
        name="lorazepam", strength="1 mg", therapeutic_class="benzodiazepine", dea_schedule="4"
    )
    rx = PrescriptionFactory(
        drug=lorazepam,
        refills_authorized=2,
        refills_remaining=1,
        patient__first_name="Ada",
        patient__last_name="Lovelace",
    )
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    services.refill_request_deny(
        request_id=req.pk, actor=pharmacist, reason="Early refill of a controlled drug"
    )

    login("audrey")
    page.goto(f"/refills/{req.pk}/")
    timeline = page.get_by_role("region", name="History", exact=True)
    assert timeline.is_visible()
    assert timeline.get_by_text("Paula Reyes").first.is_visible()
    assert "Denied" in timeline.inner_text()

    page.get_by_role("link", name="Audit").click()
    assert page.get_by_role("heading", name="PHI access log").is_visible()
    row = page.get_by_role("row").filter(has_text=f"refill request {req.pk}")
    assert row.count() == 1 and "audrey" in row.inner_text()
    page.get_by_label("Patient ID").fill(str(rx.patient_id))
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("row").filter(has_text=f"#{rx.patient_id}").count() >= 1

    page.get_by_role("link", name="Exports").click()
    assert page.get_by_label("From").first.input_value()  # defaults to the last 30 days
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download controlled-substance report").click()
    download = download_info.value
    assert download.suggested_filename.startswith("controlled-substances_")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["request_id"], r["drug"], r["dea_schedule"], r["status"], r["decided_by"]) for r in rows] == [
        (str(req.pk), "lorazepam", "4", "denied", "paula")
    ]
