"""An admin opens a refill request's history timeline, then the PHI access log (where that view
now appears), and downloads the controlled-substance report."""

import csv
import io

import pytest
from playwright.sync_api import expect

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
    expect(timeline).to_be_visible()
    expect(timeline.get_by_text("Paula Reyes").first).to_be_visible()
    expect(timeline).to_contain_text("Denied")

    # Playwright's expect() waits for each page to arrive; plain count() would not.
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="PHI access log")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=f"refill request {req.pk}")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("audrey")
    page.get_by_label("Patient ID").fill(str(rx.patient_id))
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**patient_id={rx.patient_id}**")
    expect(page.get_by_role("row").filter(has_text=f"refill request {req.pk}")).to_have_count(1)

    page.get_by_role("link", name="Exports").click()
    expect(page.get_by_role("heading", name="Exports")).to_be_visible()
    expect(page.get_by_label("From").first).not_to_have_value("")  # defaults to the last 30 days
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download controlled-substance report").click()
    download = download_info.value
    assert download.suggested_filename.startswith("controlled-substances_")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["request_id"], r["drug"], r["dea_schedule"], r["status"], r["decided_by"]) for r in rows] == [
        (str(req.pk), "lorazepam", "4", "denied", "paula")
    ]
