"""A Schedule II renewal end to end in Chromium (issue 13): the pharmacist sees no Approve and
forwards it; the prescriber's phone-sized link page offers only "I will send a new prescription from
my EPCS-certified e-prescribing system" and Deny; choosing it queues nothing that authorizes
dispensing (the pharmacy's RxRenewalRequest gets a Denied answer saying a new prescription follows);
the prescriber's NewRx, posted over HTTP to /api/v1/ncpdp/, closes the request."""
import re
import urllib.request
from dataclasses import replace
from datetime import timedelta
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
from refills.models import RefillRequest
from tests.factories import DrugFactory, FillFactory, PrescriberFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)
S = RefillStatus


def post_new_rx(base_url: str, token: str, rx: Prescription) -> ncpdp.ScriptMessage:
    """The prescriber's EPCS system sends the new prescription: NewRx XML over HTTP."""
    header = ncpdp.Header(to=ncpdp.Party("P", rx.pharmacy.ncpdp_id), from_=ncpdp.Party("D", rx.prescriber.npi),
                          message_id="EPCS-NEWRX-1", prescriber_order_number="EPCS-ORDER-1")
    med = replace(parties.medication_info(rx, refills=0), written_date=timezone.localdate(),
                  quantity=Decimal("60"), days_supply=30)
    xml = ncpdp.build_new_rx(header=header, patient=parties.patient_info(rx.patient),
                             pharmacy=parties.pharmacy_info(rx.pharmacy),
                             prescriber=parties.prescriber_info(rx.prescriber), medication=med)
    request = urllib.request.Request(f"{base_url}/api/v1/ncpdp/", data=xml.encode(), method="POST", headers={
        "Content-Type": "application/xml", "Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (the live test server)
        assert response.status == 200
        return ncpdp.parse_message(response.read())


def _authorizing(req):
    out = []
    for m in OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(req.pk)):
        if m.kind == "ncpdp:NewRx" or any(f"<{tag}" in m.payload for tag in ("Approved", "Replace")):
            out.append(m)
    return out


def test_schedule_ii_renewal_forwarded_epcs_choice_then_new_rx_closes_it(page, login, make_user, browser,
                                                                           live_server):
    make_user("pharmacist", username="paula", first_name="Paula", last_name="Reyes")
    today = timezone.localdate()
    rx = PrescriptionFactory(
        patient__first_name="Grace", patient__last_name="Hopper",
        drug=DrugFactory(name="oxycodone", strength="5 mg", dea_schedule="2", therapeutic_class="opioid_analgesic"),
        prescriber=PrescriberFactory(first_name="Omar", last_name="Haddad", email="haddad@clinic.example.com"),
        sig="Take 1 tablet by mouth every 6 hours as needed for pain", quantity=Decimal("60"), days_supply=15,
        refills_authorized=0, refills_remaining=0, written_date=today - timedelta(days=14), rx_number="C2-0001")
    FillFactory(prescription=rx, fill_date=today - timedelta(days=14), quantity=Decimal("60"), days_supply=15)
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status=S.NEEDS_REVIEW, kind="renewal",
                                       source="pharmacy", pharmacy_message_id="PHARM-RENEW-C2", pharmacy=rx.pharmacy,
                                       prescriber=rx.prescriber)

    # 1. The pharmacist opens it: no Approve, the reason, Forward and Deny.
    login("paula")
    page.goto("/refills/")
    page.get_by_role("link", name="Hopper, Grace").click()
    assert page.get_by_test_id("status").inner_text() == "Needs pharmacist review"
    assert page.get_by_role("button", name="Approve (a)").count() == 0
    assert "EPCS" in page.get_by_test_id("why-no-approve").inner_text()
    assert page.get_by_role("button", name="Deny (d)").is_visible()
    page.get_by_role("button", name="Forward to prescriber (f)").click()
    req.refresh_from_db()
    assert req.status == S.AWAITING_PRESCRIBER
    (email,) = [m for m in mail.outbox if m.to == ["haddad@clinic.example.com"]]
    path = re.search(r"/refills/link/[A-Za-z0-9_-]+/", email.body).group(0)

    # 2. The prescriber's phone: the EPCS choice and Deny, nothing that approves.
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True)
    phone.set_default_timeout(15_000)
    doctor = phone.new_page()
    doctor.goto(path)
    assert doctor.get_by_role("heading", name=re.compile("oxycodone")).is_visible()
    assert doctor.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    epcs = doctor.get_by_role(
        "button", name="I will send a new prescription from my EPCS-certified e-prescribing system")
    assert epcs.is_visible()
    assert doctor.get_by_role("button", name="Approve", exact=True).count() == 0
    assert doctor.get_by_role("button", name="Approve with changes").count() == 0
    assert doctor.get_by_role("button", name="Deny").is_visible()
    epcs.click()
    assert doctor.get_by_role("heading", name="Thank you").is_visible()
    phone.close()

    req.refresh_from_db()
    assert req.status == S.AWAITING_NEW_PRESCRIPTION
    assert _authorizing(req) == [], "nothing that authorizes dispensing was queued"
    (answer,) = OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(req.pk))
    parsed = ncpdp.parse_message(answer.payload)
    assert parsed.transaction == "RxRenewalResponse" and parsed.response.kind == "Denied"
    assert "New prescription to follow" in answer.payload
    rx.refresh_from_db()
    assert (rx.refills_remaining, rx.written_date) == (0, today - timedelta(days=14))

    # 3. The prescriber's NewRx arrives over HTTP: the request is replaced and linked.
    integrator = Token.objects.create(user=make_user("integrator"))
    stamp(rx.pharmacy, actor=integrator.user, reason="Test: the pharmacy's integrator account")
    rx.pharmacy.integrator_users.add(integrator.user)
    status = post_new_rx(live_server.url, integrator.key, rx)
    assert (status.transaction, status.status_code) == ("Status", "010")
    req.refresh_from_db()
    assert req.status == S.REPLACED_BY_NEW_PRESCRIPTION
    new = Prescription.objects.exclude(pk=rx.pk).get(patient=rx.patient)
    assert req.new_prescription_id == new.pk and new.dea_schedule == "2"
    page.goto(f"/refills/{req.pk}/")
    assert page.get_by_test_id("status").inner_text() == "Replaced by a new prescription"
