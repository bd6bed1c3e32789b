"""Refills end to end in Chromium: a pharmacist claims and approves a refill from the queue; a
renewal is forwarded, the prescriber approves it with changes through the e-mailed link on a
phone-sized screen; the pharmacy's RxFill, posted over HTTP to /api/v1/ncpdp/, moves it to filled."""
import re
import urllib.request
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.authtoken.models import Token

from pharmacy import ncpdp_parties as parties
from pharmacy.actors import stamp
from pharmacy.interop import ncpdp
from pharmacy.models import OutboxMessage, Prescription
from refills.choices import RefillStatus
from refills.models import PrescriberLink, RefillRequest
from tests.factories import DrugFactory, FillFactory, PrescriberFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)
S = RefillStatus


def open_request(rx, **kwargs) -> RefillRequest:
    return RefillRequest.objects.create(prescription=rx, patient=rx.patient, status=S.NEEDS_REVIEW,
                                        pharmacy=rx.pharmacy, prescriber=rx.prescriber, **kwargs)


def post_rx_fill(base_url: str, token: str, req: RefillRequest) -> ncpdp.ScriptMessage:
    """The pharmacy's RxFill (Dispensed), as its system sends it: XML over HTTP to /api/v1/ncpdp/."""
    rx, pharmacy = req.prescription, req.pharmacy
    header = ncpdp.Header(to=ncpdp.Party("D", rx.prescriber.npi), from_=ncpdp.Party("P", pharmacy.ncpdp_id),
                          message_id="PHM-E2E-FILL-1", relates_to_message_id=req.outbound_message_id,
                          rx_reference_number=rx.rx_number)
    xml = ncpdp.build_rx_fill(
        header=header, fill_status="Dispensed", pharmacy=parties.pharmacy_info(pharmacy),
        patient=parties.patient_info(rx.patient), prescriber=parties.prescriber_info(rx.prescriber),
        medication_dispensed=parties.medication_info(rx, quantity=Decimal("180"), days_supply=90,
                                                     last_fill_date=timezone.localdate()))
    request = urllib.request.Request(f"{base_url}/api/v1/ncpdp/", data=xml.encode(), method="POST", headers={
        "Content-Type": "application/xml", "Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (the live test server)
        assert response.status == 200
        return ncpdp.parse_message(response.read())


def test_queue_approve_then_renewal_by_prescriber_link_then_filled(page, login, make_user, browser, live_server):
    make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    refill_rx = PrescriptionFactory(patient__first_name="Ada", patient__last_name="Lovelace",
                                    drug=DrugFactory(name="lisinopril"), refills_remaining=3)
    FillFactory(prescription=refill_rx)
    refill = open_request(refill_rx, protocol_mode="shadow", protocol_suggestion="approve")
    renewal_rx = PrescriptionFactory(
        patient__first_name="Grace", patient__last_name="Hopper", drug=DrugFactory(name="metformin"),
        prescriber=PrescriberFactory(first_name="Omar", last_name="Haddad", email="haddad@clinic.example.com"),
        sig="Take 1 tablet by mouth twice daily with meals", quantity=Decimal("60"), days_supply=30,
        refills_authorized=2, refills_remaining=0)
    FillFactory(prescription=renewal_rx, quantity=Decimal("60"))
    renewal = open_request(renewal_rx, kind="renewal", eligibility=[
        {"code": "no_refills_remaining", "message": "No refills remain; a renewal is needed.", "blocking": True,
         "citation": ""}])

    # 1. The pharmacist claims the refill from the queue and approves it.
    login("paula")
    page.goto("/refills/")
    page.get_by_role("link", name="Lovelace, Ada").click()
    page.get_by_role("button", name="Claim (c)").click()
    assert page.get_by_text("Claimed — it is yours to work.").is_visible()
    page.get_by_role("button", name="Approve (a)").click()
    assert page.get_by_text("authorization is on its way to the pharmacy").is_visible()
    refill.refresh_from_db()
    assert refill.status in (S.APPROVED, S.SENT_TO_PHARMACY) and refill.decided_by.username == "paula"
    assert OutboxMessage.objects.filter(kind="ncpdp:NewRx", related_id=str(refill.pk)).count() == 1

    # 2. The renewal goes to the prescriber.
    page.goto("/refills/")
    page.get_by_role("link", name="Hopper, Grace").click()
    page.get_by_role("button", name="Forward to prescriber (f)").click()
    assert page.get_by_text("Forwarded to the prescriber: Hopper, Grace").is_visible()
    page.goto(f"/refills/{renewal.pk}/")  # the decision opened the next open request (none left: the queue)
    assert page.get_by_test_id("status").inner_text() == "Awaiting prescriber"
    (email,) = [m for m in mail.outbox if m.to == ["haddad@clinic.example.com"]]
    assert "Hopper" not in email.body and "metformin" not in email.body  # no PHI in the message
    path = re.search(r"/refills/link/[A-Za-z0-9_-]+/", email.body).group(0)

    # 3. The prescriber opens the link on a phone, no login, and approves with changes.
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True)
    phone.set_default_timeout(15_000)
    doctor = phone.new_page()
    doctor.goto(path)
    assert doctor.get_by_role("heading", name=re.compile("metformin")).is_visible()
    assert doctor.get_by_text("Take 1 tablet by mouth twice daily with meals").is_visible()
    assert doctor.get_by_text("No refills remain; a renewal is needed.").is_visible()
    assert doctor.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    doctor.get_by_label("Quantity").fill("180")
    doctor.get_by_label("Days supply").fill("90")
    doctor.get_by_label("Refills", exact=True).fill("3")
    doctor.get_by_role("button", name="Approve with changes").click()
    assert doctor.get_by_role("heading", name="Thank you").is_visible()
    assert doctor.get_by_text("Approved with changes").is_visible()
    doctor.goto(path)  # single use
    assert doctor.get_by_role("heading", name="This link has already been used").is_visible()
    phone.close()

    renewal.refresh_from_db()
    rx = Prescription.objects.get(pk=renewal_rx.pk)
    assert renewal.status in (S.APPROVED_WITH_CHANGES, S.SENT_TO_PHARMACY)
    assert (renewal.approved_quantity, renewal.approved_days_supply, renewal.approved_refills) == (
        Decimal("180"),
        90,
        3,
    )
    assert (rx.quantity, rx.days_supply, rx.refills_remaining) == (Decimal("180"), 90, 3)
    assert PrescriberLink.objects.get(request=renewal).status == "used"
    # The authorization was delivered to the pharmacy's outbox folder after the commit.
    assert renewal.status == S.SENT_TO_PHARMACY, renewal.status

    # 4. The pharmacy's RxFill arrives over HTTP: the request is filled and the patient hears once.
    integrator = Token.objects.create(user=make_user("integrator"))
    stamp(renewal.pharmacy, actor=integrator.user, reason="Test: the pharmacy's integrator account")
    renewal.pharmacy.integrator_users.add(integrator.user)  # it speaks for this pharmacy only
    answer = post_rx_fill(live_server.url, integrator.key, renewal)
    assert (answer.transaction, answer.status_code, answer.relates_to_message_id) == ("Status", "010", "PHM-E2E-FILL-1")
    page.goto(f"/refills/{renewal.pk}/")
    assert page.get_by_test_id("status").inner_text() == "Filled"
    renewal.refresh_from_db()
    assert renewal.status == S.FILLED
    fill = rx.fills.order_by("-id").first()
    assert (fill.quantity, fill.days_supply) == (Decimal("180"), 90)
    ready = OutboxMessage.objects.get(kind="sms:refill-ready", related_id=str(renewal.pk))
    assert ready.payload == "Hi Grace, your metformin is ready for pickup."
