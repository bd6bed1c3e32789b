"""Every error page (403, 404, 410, 500, 503) is styled, says why and offers a way back (Chromium);
an integrator who logs in lands on its API token page and can create and revoke its own token."""
import re

import pytest
from rest_framework.authtoken.models import Token

from refills import links, services
from refills.links import prescriber_link_answer
from refills.models import PrescriberLink, RefillRequest
from tests.factories import FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def styled(page) -> None:
    """The page carries the app's stylesheet (not the browser's bare default) and a way back."""
    card = page.get_by_test_id("error-page")
    assert card.is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor") == "rgb(16, 42, 67)"
    assert card.evaluate("e => getComputedStyle(e).borderRadius") == "8px"
    assert page.get_by_role("navigation", name="Ways back").get_by_role("link").count() >= 1


def test_error_pages_are_styled_with_a_reason_and_a_way_back(page, login, make_user, settings):
    settings.ROOT_URLCONF = "tests.e2e.error_urls"
    make_user("technician", username="tina")
    login("tina")

    # 403: the technician opens the PHI access log (admins only) from the dashboard.
    page.goto("/")
    page.goto("/audit/phi-access/", referer=page.url)
    styled(page)
    assert page.get_by_role("heading", name="You may not open this page").is_visible()
    assert page.get_by_text("This page is for the admin role").is_visible()
    page.get_by_test_id("way-home").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("heading", name="Today's work").is_visible()

    # 404: a record that does not exist.
    response = page.goto("/refills/999999/")
    assert response.status == 404
    styled(page)
    assert page.get_by_text("No such refill request.").is_visible()

    # 410: a prescriber link already answered.
    rx = PrescriptionFactory(refills_remaining=0, refills_authorized=3)
    FillFactory(prescription=rx)
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review", kind="renewal",
                                       pharmacy=rx.pharmacy, prescriber=rx.prescriber)
    services.refill_request_forward(request_id=req.pk, actor=make_user("pharmacist"), note="Please renew")
    token = links.link_token(PrescriberLink.objects.get(request=req))
    prescriber_link_answer(token=token, decision="deny", reason="Needs a visit first", reason_code="AF")
    response = page.goto(f"/refills/link/{token}/")
    assert response.status == 410
    styled(page)
    assert page.get_by_role("heading", name="This link has already been used").is_visible()

    # 500 and 503.
    response = page.goto("/test-only/boom/")
    assert response.status == 500
    styled(page)
    assert page.get_by_role("heading", name="Something went wrong on our side").is_visible()
    response = page.goto("/test-only/outage/")
    assert response.status == 503 and response.headers["retry-after"] == "30"
    styled(page)
    assert page.get_by_text("The database is not answering.").is_visible()


def test_integrator_lands_on_its_token_page_and_manages_its_own_token(page, login, make_user):
    integrator = make_user("integrator", username="feedbot")
    other = Token.objects.create(user=make_user("integrator", username="otherbot"))
    login("feedbot")
    assert page.url.endswith("/account/api-tokens/")
    assert page.get_by_role("heading", name="Your API token").is_visible()
    assert not page.get_by_role("link", name="Refills").count()  # no menu entry that would answer 403
    page.get_by_role("button", name="Create a token").click()
    key = page.get_by_test_id("new-token").inner_text()
    assert Token.objects.get(user=integrator).key == key and other.key not in page.content()
    page.get_by_role("button", name="Revoke this token").click()
    assert page.get_by_text("Token revoked").is_visible()
    assert not Token.objects.filter(user=integrator).exists() and Token.objects.filter(pk=other.pk).exists()
