"""Medication reconciliation end to end in Chromium: an ADT^A03 discharge with an OBX medication
list arrives over MLLP; the task appears in the queue; the pharmacist accepts one discrepancy (by
keyboard, with a note) and rejects another; the patient page shows the result."""
import hl7
import pytest
from hl7.client import MLLPClient
from playwright.sync_api import expect

from reconciliation.mllp import BackgroundMLLPServer
from tests.reconciliation.conftest import a03, ada, catalog_drugs, linked_ada  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_discharge_over_mllp_to_patient_page(page, login, make_user, linked_ada):  # noqa: F811
    make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    with BackgroundMLLPServer(idle_timeout=10) as server, MLLPClient("127.0.0.1", server.port) as client:
        ack = client.send_message(a03(control_id="E2E-1", meds=("WARFARIN 5MG DAILY", "METFORMIN 500MG BID")))
    assert str(hl7.parse(ack.strip(b"\x0b\x1c\r").decode()).segment("MSA")[1]) == "AA"

    login("paula")
    page.get_by_role("link", name="Reconciliation", exact=True).click()
    row = page.get_by_test_id("task-row").first
    assert "Discharge" in row.inner_text()
    row.get_by_role("link", name="Lovelace, Ada").click()
    assert page.get_by_role("heading", name="Reconciliation for Ada Lovelace").is_visible()
    items = page.get_by_test_id("discrepancy")
    assert items.count() == 2
    assert "metformin" in items.nth(0).inner_text().lower()  # new in EHR
    assert "lisinopril" in items.nth(1).inner_text().lower()  # not on the discharge list

    # Keyboard: j selects the first item, n opens its note, Enter accepts.
    # Keys pressed before the page's scripts run are lost (and an "n" inside the typed note
    # would then move the focus mid-sentence): wait for them, and for the note to have focus.
    page.wait_for_load_state("load")
    page.keyboard.press("j")
    page.keyboard.press("n")
    expect(page.locator("[data-note]:focus")).to_have_count(1)
    page.keyboard.type("Continue metformin per discharge summary")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Accepted and applied.")
    expect(page.get_by_test_id("discrepancy").nth(0)).to_contain_text("Accepted")
    # r rejects the next open item.
    with page.expect_navigation():
        page.keyboard.press("r")
    expect(page.get_by_role("status")).to_contain_text("Rejected; nothing was changed.")
    expect(page.get_by_test_id("task-status")).to_have_text("Completed")

    page.get_by_role("link", name="patient page").click()
    decisions = page.get_by_test_id("recon-decisions").inner_text()
    assert "Accepted (applied): metformin" in decisions and "Continue metformin per discharge summary" in decisions
    assert "Rejected: lisinopril" in decisions
    prescriptions = page.get_by_role("region", name="Prescriptions").inner_text()
    assert "metformin" in prescriptions and "Pending prescriber confirmation" in prescriptions
    assert "lisinopril" in prescriptions and "On hold" not in prescriptions
