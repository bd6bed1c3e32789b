"""Prior authorization end to end in Chromium: a reject-75 claim arrives by API, the case appears
with its draft, the pharmacist edits the letter and submits, a pushed approval closes it, and the
analytics page renders its charts."""

import pytest
import requests
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.priorauth.conftest import NDC, make_criteria, pa_rx, payer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_reject_75_to_approval_in_the_browser(page, login, live_server, make_user, pa_rx, make_criteria, payer):  # noqa: F811
    make_criteria(rollout_mode="assist")
    make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    switch = make_user("integrator", username="claims-switch")
    pa_rx.pharmacy.integrator_users.add(switch)  # a claims switch speaks for the pharmacies bound to it
    token = Token.objects.create(user=switch).key
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"

    answer = api.post(
        f"{live_server.url}/api/v1/claim-rejections/",
        json={
            "prescription": pa_rx.pk,
            "ndc": NDC,
            "bin": "610014",
            "pcn": "MEDDPRIME",
            "group": "G1234",
            "reject_codes": ["75"],
            "claim_reference": "SW-2026-0001",
            "rejected_at": timezone.now().isoformat(),
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case"]

    login("paula")
    page.get_by_role("link", name="Prior auth", exact=True).click()
    page.get_by_role("link", name=f"#{case_id}").click()
    assert page.get_by_test_id("status").inner_text() == "Ready for review"
    letter = page.get_by_label("Medical-necessity letter")
    assert "semaglutide" in letter.input_value() and "[dx:" in letter.input_value()
    assert page.get_by_role("region", name="Criteria check").get_by_text("met").first.is_visible()

    letter.fill(letter.input_value() + "\nReviewed with Dr. Smith by phone today.")
    page.get_by_role("button", name="Approve and submit").click()
    assert page.get_by_text("Approved and submitted to the payer.").is_visible()
    assert page.get_by_test_id("status").inner_text() == "Submitted to payer"
    assert page.get_by_test_id("deadline").is_visible()

    # The payer answers with its own account, bound to that payer (a partner sees only its own cases).
    payer_account = make_user("integrator", username="blue-harbor-pa")
    payer.integrator_users.add(payer_account)
    payer_api = requests.Session()
    payer_api.headers["Authorization"] = f"Token {Token.objects.create(user=payer_account).key}"
    today = timezone.localdate()
    pushed = payer_api.post(
        f"{live_server.url}/api/v1/pa-responses/",
        json={
            "case": case_id,
            "decision": "approved",
            "authorization_number": "BH-PA-99812",
            "effective_date": today.isoformat(),
            "expiration_date": today.replace(year=today.year + 1).isoformat(),
        },
        timeout=30,
    )
    assert pushed.status_code == 201, pushed.text

    page.reload()
    assert page.get_by_test_id("status").inner_text() == "Approved"
    assert page.get_by_test_id("auth-number").inner_text() == "BH-PA-99812"
    assert "Reviewed with Dr. Smith" in page.get_by_test_id("letter").inner_text()

    page.goto("/priorauth/analytics/")
    for key in ("by-status", "approval-payer", "approval-drug"):
        chart = page.locator(f'svg[data-chart="{key}"]')
        assert chart.is_visible() and chart.locator("rect").count() >= 1
    assert page.get_by_role("cell", name="Blue Harbor Health").first.is_visible()
