"""Pickers, not ids (Chromium): a patient matched from the candidates list (scores and what differs
shown), a patient created from a message, and a triage message assigned by searching the patient
and choosing one of their prescriptions."""
from datetime import date

import pytest

from reconciliation import services
from reconciliation.models import PatientMatchItem
from refills.intake import intake_receive
from refills.models import RefillRequest
from tests.factories import DrugFactory, PatientFactory, PrescriptionFactory
from tests.reconciliation.conftest import a03, ada, catalog_drugs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_patient_matched_from_the_candidates_list(page, login, make_user, ada):  # noqa: F811
    twin = PatientFactory(first_name="Ada", last_name="Lovelace", birth_date=date(1960, 1, 5), sex="M",
                          mrn="TWIN-1")
    services.ingest(channel="mllp", payload=a03(control_id="PICK-1", mrn="NEW-1"))
    item = PatientMatchItem.objects.get()
    services.ingest(channel="mllp", payload=a03(control_id="PICK-2", mrn="NEW-2", family="BYRON",
                                                given="AUGUSTA", birth="19700210"))
    stranger = PatientMatchItem.objects.exclude(pk=item.pk).get()
    make_user("technician", username="tomas")
    login("tomas")
    page.goto("/reconciliation/matches/")
    assert "Patient ID" not in page.content()
    card = page.locator(f'[data-match-item="{item.pk}"]')
    rows = card.locator("[data-candidate]")
    assert rows.count() == 2
    twin_row = rows.filter(has_text="TWIN-1")
    assert "sex F ≠ M" in twin_row.inner_text() and "0.90" in twin_row.inner_text()
    ada_row = rows.filter(has_text=ada.mrn)
    assert "nothing" in ada_row.inner_text() and "1.00" in ada_row.inner_text()
    ada_row.get_by_role("radio").check()
    card.get_by_role("button", name="Match to the chosen patient").click()
    assert page.get_by_text("Patient matched; the message was processed.").is_visible()
    item.refresh_from_db()
    assert item.status == "resolved" and item.resolved_patient_id == ada.pk and item.resolved_patient_id != twin.pk

    # The second message's patient is nobody here: a search finds nobody, so the patient is created.
    card = page.locator(f'[data-match-item="{stranger.pk}"]')
    card.get_by_label("Birth date").fill("1970-02-10")
    card.get_by_role("button", name="Search patients").click()
    card = page.locator(f'[data-match-item="{stranger.pk}"]')
    assert card.get_by_text("No patient found by that search.").is_visible()
    card.get_by_role("button", name="Create a patient from this message").click()
    assert page.get_by_text("New patient created from the message").is_visible()
    stranger.refresh_from_db()
    created = stranger.resolved_patient
    assert (created.last_name, created.first_name, created.birth_date) == ("BYRON", "AUGUSTA", date(1970, 2, 10))
    assert created.mrn.startswith("NEW-")


def test_triage_message_assigned_by_patient_search(page, login, make_user):
    grace = PatientFactory(first_name="Grace", last_name="Hopper", birth_date=date(1956, 12, 9), phone="")
    PatientFactory(first_name="Grace", last_name="Hopper", birth_date=date(1990, 3, 3))  # same name, other person
    PrescriptionFactory(patient=grace, drug=DrugFactory(name="atorvastatin"), rx_number="RX-2201")
    metformin = PrescriptionFactory(patient=grace, drug=DrugFactory(name="metformin"), rx_number="RX-2202")
    technician = make_user("technician", username="tina")
    msg = intake_receive(channel="sms", sender="6175550142", text="Hi it's Grace, I need my diabetes pills",
                         actor=technician)
    assert msg.status == "triage"
    login("tina")
    page.goto("/refills/triage/")
    card = page.get_by_role("region", name=f"Message {msg.pk}")
    assert not card.get_by_role("spinbutton").count()  # no number box for an internal id
    card.get_by_label("Find the patient — name").fill("Hopper, Grace")
    card.get_by_label("Birth date").fill("1956-12-09")
    card.get_by_role("button", name="Find").click()
    found = page.get_by_test_id("found-patients")
    assert found.get_by_text("born 1956-12-09").is_visible() and not found.get_by_text("born 1990-03-03").count()
    found.get_by_label("Rx RX-2202 — metformin").check()
    page.get_by_role("region", name=f"Message {msg.pk}").get_by_role("button", name="Open request").click()
    assert page.get_by_text(f"Message {msg.pk} assigned").is_visible()
    msg.refresh_from_db()
    assert msg.status == "resolved" and msg.matched_patient_id == grace.pk
    assert RefillRequest.objects.get(intake=msg).prescription_id == metformin.pk
