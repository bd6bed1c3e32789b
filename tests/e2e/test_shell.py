"""A pharmacist logs in, sees the dashboard and opens a patient page."""
import pytest
from playwright.sync_api import expect

from tests.factories import AllergyFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_dashboard_and_patient_page(page, login, make_user):
    make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    rx = PrescriptionFactory(patient__first_name="Ada", patient__last_name="Lovelace", drug__name="lisinopril")
    FillFactory(prescription=rx)
    AllergyFactory(patient=rx.patient, substance="Penicillin")

    login("paula")
    assert page.get_by_role("heading", name="Today's work").is_visible()
    assert "Paula Reyes" in page.locator(".who").inner_text()

    page.wait_for_load_state("load")  # the shortcut handler is attached by a deferred script
    page.keyboard.press("/")
    expect(page.locator("#quick-q:focus")).to_have_count(1)
    page.keyboard.type("Lovelace")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Lovelace, Ada").click()
    assert page.get_by_role("heading", name="Lovelace, Ada").is_visible()
    assert page.get_by_role("region", name="Prescriptions").get_by_text("lisinopril").first.is_visible()
    assert page.get_by_role("region", name="Allergies").get_by_text("Penicillin").is_visible()


def test_wrong_password_shows_an_error(page, make_user):
    make_user("pharmacist", username="paula")
    page.goto("/login/")
    page.get_by_label("Username").fill("paula")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
