"""Inbound NCPDP SCRIPT at POST /api/v1/ncpdp/: each transaction, store-first, duplicates, hostile
and oversize XML (answered with an Error and nothing changed), and the binding of integrator
accounts to the pharmacies they speak for."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from pharmacy import ncpdp_parties as parties
from pharmacy.actors import stamp
from pharmacy.interop import ncpdp
from pharmacy.models import Fill, OutboxMessage, Pharmacy
from refills import services
from refills.models import InboundNcpdpMessage, RefillRequest
from tests.factories import FillFactory, PharmacyFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/ncpdp/"


def bind(user, *pharmacies):
    """Let ``user`` post NCPDP messages as these pharmacies (as an admin does in the admin)."""
    for pharmacy in pharmacies:
        stamp(pharmacy, actor=user, reason="Test: integrator account bound")
        pharmacy.integrator_users.add(user)


@pytest.fixture
def api(api_client_for):
    """The integrator of a trading partner that speaks for every pharmacy on file (bound to each
    before it posts); the binding itself is tested at the end with accounts of their own."""
    return api_client_for("integrator")


def post(api, xml: str | bytes, *, bind_all: bool = True):
    if bind_all:
        bind(api.user, *Pharmacy.objects.exclude(integrator_users=api.user))
    return api.post(URL, data=xml, content_type="application/xml")


def answer_of(response) -> ncpdp.ScriptMessage:
    assert response["Content-Type"].startswith("application/xml")
    return ncpdp.parse_message(response.content)


def _patient(rx) -> ncpdp.PatientInfo:
    return parties.patient_info(rx.patient)


def renewal_request(rx, *, message_id="PHM-0001", rx_number=None, description=None, pharmacy=None, patient=None,
                    refills=3) -> str:
    pharmacy = pharmacy or rx.pharmacy
    header = ncpdp.Header(to=ncpdp.Party("D", rx.prescriber.npi), from_=ncpdp.Party("P", pharmacy.ncpdp_id),
                          message_id=message_id,
                          rx_reference_number=rx.rx_number if rx_number is None else rx_number)
    return ncpdp.build_rx_renewal_request(
        header=header, patient=patient or _patient(rx),
        pharmacy=parties.pharmacy_info(pharmacy), prescriber=parties.prescriber_info(rx.prescriber),
        medication_prescribed=replace(parties.medication_info(rx, last_fill_date=timezone.localdate()),
                                      description=description or f"{rx.drug.name} 10 mg tablet",
                                      quantity=Decimal("30"), days_supply=30),
        requested_refills=refills)


def rx_fill(rx, *, relates_to, status="Dispensed", message_id="PHM-FILL-1", pharmacy=None, reason_code="",
            quantity="30") -> str:
    pharmacy = pharmacy or rx.pharmacy
    header = ncpdp.Header(to=ncpdp.Party("D", rx.prescriber.npi), from_=ncpdp.Party("P", pharmacy.ncpdp_id),
                          message_id=message_id, relates_to_message_id=relates_to, rx_reference_number=rx.rx_number)
    dispensed = None
    if status in ("Dispensed", "PartiallyDispensed"):
        dispensed = replace(parties.medication_info(rx, last_fill_date=timezone.localdate()),
                            description=rx.drug.name, quantity=Decimal(quantity), days_supply=30)
    return ncpdp.build_rx_fill(header=header, fill_status=status, reason_code=reason_code,
                               medication_dispensed=dispensed,
                               medication_prescribed=None if dispensed else parties.medication_info(rx),
                               patient=parties.patient_info(rx.patient), pharmacy=parties.pharmacy_info(pharmacy),
                               prescriber=parties.prescriber_info(rx.prescriber))


@pytest.fixture
def rx(db):
    today = timezone.localdate()
    rx = PrescriptionFactory(rx_number="RX-7001", refills_authorized=5, refills_remaining=0,
                             written_date=today - timedelta(days=200))
    FillFactory(prescription=rx, fill_date=today - timedelta(days=27))
    return rx


# --- RxRenewalRequest ---------------------------------------------------------------------------

def test_renewal_request_opens_request_and_answers_status_010(api, rx):
    response = post(api, renewal_request(rx))
    assert response.status_code == 200, response.content
    status = answer_of(response)
    assert status.transaction == "Status" and status.status_code == "010"
    assert status.relates_to_message_id == "PHM-0001"
    assert (status.to.qualifier, status.to.id) == ("P", rx.pharmacy.ncpdp_id)  # To/From swapped
    assert status.from_.qualifier == "D"
    req = RefillRequest.objects.get(prescription=rx)
    assert (req.source, req.kind, req.pharmacy_message_id, req.pharmacy_requested_refills) == \
        ("pharmacy", "renewal", "PHM-0001", 3)
    row = InboundNcpdpMessage.objects.get()
    assert (row.status, row.transaction, row.sender, row.refill_request_id) == \
        ("processed", "RxRenewalRequest", f"P:{rx.pharmacy.ncpdp_id}", req.pk)
    assert "<RxRenewalRequest>" in row.payload and row.answer == response.content.decode()
    history = req.history.earliest()
    assert history.history_user.username == "system:ncpdp-inbound"


def test_renewal_request_matched_by_patient_and_brand_name_without_rx_number(api, rx):
    rx.drug.brand_names = ["Zestril"]
    rx.drug.save(update_fields=["brand_names"])
    response = post(api, renewal_request(rx, rx_number="", description="Zestril 10 MG Oral Tablet"))
    assert response.status_code == 200, response.content
    assert RefillRequest.objects.get().prescription == rx


def test_unknown_prescription_is_stored_and_answered_with_error_naming_what_did_not_match(api, rx):
    stranger = ncpdp.PatientInfo(last_name="Nobody", first_name="Nemo", birth_date=rx.patient.birth_date)
    response = post(api, renewal_request(rx, rx_number="RX-404", patient=stranger))
    assert response.status_code == 400
    error = answer_of(response)
    assert error.transaction == "Error" and error.error_code == "900"
    assert "RX-404" in error.error_description and "Patient" in error.error_description
    assert error.relates_to_message_id == "PHM-0001"
    assert not RefillRequest.objects.exists()
    row = InboundNcpdpMessage.objects.get()
    assert row.status == "rejected" and row.error_code == "900" and "<RxRenewalRequest>" in row.payload


def test_drug_not_on_file_is_named_in_the_error(api, rx):
    response = post(api, renewal_request(rx, rx_number="", description="Atorvastatin 20 mg tablet"))
    error = answer_of(response)
    assert error.error_code == "900" and "MedicationPrescribed" in error.error_description
    assert "Atorvastatin" in error.error_description


def test_unknown_pharmacy_is_refused(api, rx):
    stranger = PharmacyFactory.build(ncpdp_id="7654321", name="Elsewhere")
    response = post(api, renewal_request(rx, pharmacy=stranger))
    error = answer_of(response)
    assert error.error_code == "900" and "7654321" in error.error_description
    assert not RefillRequest.objects.exists()


def test_prescription_routed_to_another_pharmacy_is_refused(api, rx):
    other = PharmacyFactory()
    response = post(api, renewal_request(rx, pharmacy=other))
    assert answer_of(response).error_code == "900"
    assert not RefillRequest.objects.exists()


def test_duplicate_message_id_gets_the_same_answer_and_changes_nothing(api, rx):
    xml = renewal_request(rx)  # a resend is the same bytes: sender, MessageID and SHA-256 match
    first = post(api, xml)
    second = post(api, xml)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # the very same Status, MessageID included
    assert RefillRequest.objects.count() == 1
    rows = list(InboundNcpdpMessage.objects.order_by("id"))
    assert [r.status for r in rows] == ["processed", "duplicate"]
    assert rows[1].duplicate_of == rows[0] and rows[1].refill_request == rows[0].refill_request


def test_same_message_id_from_another_sender_is_not_a_duplicate(api, rx):
    other_rx = PrescriptionFactory(rx_number="RX-9", refills_remaining=0)
    assert post(api, renewal_request(rx)).status_code == 200
    assert post(api, renewal_request(other_rx)).status_code == 200
    assert RefillRequest.objects.count() == 2


def test_failed_message_is_processed_again_when_resent(api, rx):
    rx.rx_number = "RX-LATER"
    rx.save(update_fields=["rx_number"])
    stranger = replace(_patient(rx), last_name="Nobody")
    xml = renewal_request(rx, rx_number="RX-7001", patient=stranger)
    assert post(api, xml).status_code == 400
    rx.rx_number = "RX-7001"  # the office fixes its record; the pharmacy resends
    rx.save(update_fields=["rx_number"])
    ok = post(api, renewal_request(rx))
    assert ok.status_code == 200 and RefillRequest.objects.count() == 1


def test_same_message_id_with_other_content_is_its_own_message_flagged_reused(api, rx):
    other_rx = PrescriptionFactory(rx_number="RX-8", refills_remaining=0, pharmacy=rx.pharmacy)
    assert post(api, renewal_request(rx)).status_code == 200
    reused = post(api, renewal_request(other_rx))  # same sender and MessageID, another prescription
    assert reused.status_code == 200 and RefillRequest.objects.count() == 2
    rows = list(InboundNcpdpMessage.objects.order_by("id"))
    assert [(r.status, r.control_id_reused) for r in rows] == [("processed", False), ("processed", True)]
    assert rows[0].payload_sha256 != rows[1].payload_sha256 and len(rows[1].payload_sha256) == 64
    listed = api.get("/api/v1/ncpdp/messages/").json()["results"]
    assert [m["control_id_reused"] for m in listed] == [True, False]


def test_resend_of_a_refused_message_reprocesses_the_original_and_answers_with_that(api, rx):
    rx.rx_number = "RX-LATER"
    rx.save(update_fields=["rx_number"])
    married = replace(_patient(rx), last_name="Newname")
    xml = renewal_request(rx, rx_number="RX-7001", patient=married)  # our record knows neither yet
    assert post(api, xml).status_code == 400
    rx.rx_number = "RX-7001"  # the office fixes its record; the pharmacy resends the same bytes
    rx.save(update_fields=["rx_number"])
    rx.patient.last_name = "Newname"
    rx.patient.save(update_fields=["last_name"])
    again = post(api, xml)
    assert again.status_code == 200 and answer_of(again).transaction == "Status"
    first, resend = InboundNcpdpMessage.objects.order_by("id")
    assert (first.status, first.attempts, resend.status, resend.duplicate_of_id) == (
        "processed", 2, "duplicate", first.pk)
    assert resend.answer == first.answer == again.content.decode()
    assert RefillRequest.objects.get().prescription == rx
    assert post(api, xml).content == again.content  # and a third time: the same answer, nothing new
    assert RefillRequest.objects.count() == 1


def test_own_failure_answers_602_503_is_retried_with_backoff_then_stays_failed(api, rx, settings, monkeypatch):
    from datetime import timedelta

    from pharmacy.inbound import sweep_all
    from refills import inbound

    settings.RXHUB = {**settings.RXHUB, "INBOUND_MAX_ATTEMPTS": 3, "INBOUND_RETRY_BASE_SECONDS": 60}
    real = inbound.HANDLERS["RxRenewalRequest"]
    monkeypatch.setitem(inbound.HANDLERS, "RxRenewalRequest", lambda *a: 1 / 0)
    response = post(api, renewal_request(rx))
    assert response.status_code == 503 and response["Retry-After"] and answer_of(response).error_code == "602"
    row = InboundNcpdpMessage.objects.get()
    assert (row.status, row.attempts) == ("failed", 1)
    assert timedelta(seconds=59) < row.next_attempt_at - row.processed_at <= timedelta(seconds=61)
    assert sweep_all()["ncpdp"] == 0  # not due yet
    for attempts in (2, 3):
        InboundNcpdpMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert sweep_all()["ncpdp"] == 1
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("failed", attempts)
    assert row.next_attempt_at is None and sweep_all()["ncpdp"] == 0  # attempts used up: stays failed, visible
    monkeypatch.setitem(inbound.HANDLERS, "RxRenewalRequest", real)
    InboundNcpdpMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert sweep_all()["ncpdp"] == 1
    row.refresh_from_db()
    assert row.status == "processed" and RefillRequest.objects.count() == 1


def test_message_left_received_is_swept_after_a_minute(api, rx):
    from pharmacy.inbound import sweep_all
    from refills.inbound import _store

    xml = renewal_request(rx).encode()
    bind(api.user, rx.pharmacy)
    row = _store(xml, size=len(xml), oversize=False, user=api.user)  # the receiver died right after storing
    assert sweep_all()["ncpdp"] == 0  # younger than a minute: its receiver may still be at work
    InboundNcpdpMessage.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(minutes=2))
    assert sweep_all()["ncpdp"] == 1
    row.refresh_from_db()
    assert row.status == "processed" and RefillRequest.objects.count() == 1


def test_second_request_while_one_is_open_is_refused(api, rx):
    assert post(api, renewal_request(rx)).status_code == 200
    again = post(api, renewal_request(rx, message_id="PHM-0002"))
    assert again.status_code == 400 and "open refill request" in answer_of(again).error_description
    assert RefillRequest.objects.count() == 1


# --- hostile, malformed, oversize -----------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Message><Header><To Qualifier="D">1</To><From Qualifier="P">1000001</From><MessageID>EVIL-1</MessageID>
<SentTime>2026-01-01T00:00:00Z</SentTime></Header><Body><RxRenewalRequest><Note>&lol3;</Note></RxRenewalRequest>
</Body></Message>"""
XXE = """<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Message><Header><MessageID>EVIL-2</MessageID></Header><Body><Status><Code>&x;</Code></Status></Body></Message>"""
ENTITY_NO_DTD_KEYWORD = """<?xml version="1.0"?><!DOCTYPE Message SYSTEM "http://example.invalid/x.dtd"><Message/>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, ENTITY_NO_DTD_KEYWORD, "not xml at all", "<Message><Header>",
                                 "<Other/>", ""], ids=["billion-laughs", "xxe", "external-dtd", "not-xml",
                                                       "truncated", "wrong-root", "empty"])
def test_hostile_or_malformed_xml_gets_error_900_and_changes_nothing(api, rx, xml):
    response = post(api, xml)
    assert response.status_code == 400
    error = answer_of(response)
    assert error.transaction == "Error" and error.error_code == "900"
    assert (
        not RefillRequest.objects.exists() and not Fill.objects.filter(external_reference__startswith="EVIL").exists()
    )
    row = InboundNcpdpMessage.objects.get()
    assert row.status == "rejected" and row.payload == xml and row.error
    if "EVIL-1" in xml:
        assert error.relates_to_message_id == "EVIL-1" and error.to.id == "1000001"
    assert "passwd" not in response.content.decode()


def test_oversize_body_gets_error_601_and_is_kept_truncated(api, rx, settings):
    settings.RXHUB = {**settings.RXHUB, "MAX_INBOUND_BYTES": 2000}
    xml = renewal_request(rx).replace("</Message>", "<!--" + "x" * 5000 + "--></Message>")
    response = post(api, xml)
    assert response.status_code == 413
    error = answer_of(response)
    assert error.error_code == "601" and "limit" in error.error_description
    assert error.relates_to_message_id == "PHM-0001"
    row = InboundNcpdpMessage.objects.get()
    assert row.status == "rejected" and row.size_bytes == len(xml.encode())
    assert not RefillRequest.objects.exists()


def test_transaction_not_processed_here_gets_601(api, rx):
    header = ncpdp.Header(to=ncpdp.Party("PY", "1"), from_=ncpdp.Party("P", rx.pharmacy.ncpdp_id), message_id="N1")
    xml = ncpdp.build_pa_initiation_request(
        header=header, patient=_patient(rx), prescriber=parties.prescriber_info(rx.prescriber),
        medication=parties.medication_info(rx), pa_reference_id="REF-1")
    error = answer_of(post(api, xml))
    assert error.error_code == "601" and "PAInitiationRequest" in error.error_description


def test_missing_header_field_is_named(api, rx):
    xml = renewal_request(rx).replace("<SentTime>", "<Sent>").replace("</SentTime>", "</Sent>")
    error = answer_of(post(api, xml))
    assert error.error_code == "900" and "Header/SentTime" in error.error_description


# --- RxFill ---------------------------------------------------------------------------------------

@pytest.fixture
def approved(make_request, pharmacist):
    rx = PrescriptionFactory(rx_number="RX-8001", refills_authorized=5, refills_remaining=3)
    req = make_request(prescription=rx)
    return services.refill_request_approve(request_id=req.pk, actor=pharmacist)


@pytest.mark.parametrize(("fill_status", "expected", "fill_kind"), [
    ("Dispensed", "filled", "dispensed"), ("PartiallyDispensed", "partially_filled", "partially_dispensed"),
])
def test_rx_fill_records_the_fill(api, approved, fill_status, expected, fill_kind):
    req = approved
    assert req.status == "approved" and req.outbound_message_id
    response = post(api, rx_fill(req.prescription, relates_to=req.outbound_message_id, status=fill_status,
                                 quantity="20"))
    assert response.status_code == 200, response.content
    assert answer_of(response).status_code == "010"
    req.refresh_from_db()
    assert req.status == expected
    fill = Fill.objects.get(prescription=req.prescription, external_reference="PHM-FILL-1")
    assert fill.status == fill_kind and fill.quantity == Decimal("20")
    statuses = [h.status for h in req.history.order_by("history_id")]
    assert statuses[-2:] == ["sent_to_pharmacy", expected]
    assert InboundNcpdpMessage.objects.get().refill_request == req


def test_rx_fill_not_dispensed_keeps_reason_and_writes_no_fill(api, approved):
    req = approved
    response = post(api, rx_fill(req.prescription, relates_to=req.outbound_message_id, status="NotDispensed",
                                 reason_code="BP"))
    assert response.status_code == 200
    req.refresh_from_db()
    assert req.status == "not_dispensed" and "BP" in req.fill_note and "Out of stock" in req.fill_note
    assert not Fill.objects.filter(external_reference="PHM-FILL-1").exists()


def test_rx_fill_found_by_rx_number_when_relates_to_is_unknown(api, approved):
    response = post(api, rx_fill(approved.prescription, relates_to="SOMETHING-ELSE"))
    assert response.status_code == 200
    approved.refresh_from_db()
    assert approved.status == "filled"


def test_rx_fill_twice_with_new_message_id_is_refused(api, approved):
    assert post(api, rx_fill(approved.prescription, relates_to=approved.outbound_message_id)).status_code == 200
    again = post(api, rx_fill(approved.prescription, relates_to=approved.outbound_message_id,
                              message_id="PHM-FILL-2"))
    assert again.status_code == 400 and answer_of(again).error_code == "900"
    assert Fill.objects.filter(prescription=approved.prescription, external_reference__startswith="PHM").count() == 1


def test_rx_fill_duplicate_message_id_does_not_fill_twice(api, approved):
    xml = rx_fill(approved.prescription, relates_to=approved.outbound_message_id)
    first, second = post(api, xml), post(api, xml)
    assert first.content == second.content and second.status_code == 200
    assert Fill.objects.filter(external_reference="PHM-FILL-1").count() == 1


def test_rx_fill_from_the_old_pharmacy_after_a_change_is_refused(api, approved, pharmacist):
    old = approved.prescription.pharmacy
    services.prescription_change_pharmacy(prescription_id=approved.prescription_id, pharmacy=PharmacyFactory(),
                                          actor=pharmacist)
    approved.refresh_from_db()
    approved.pharmacy = None  # the authorization follows the prescription
    approved.save(update_fields=["pharmacy"])
    response = post(api, rx_fill(approved.prescription, relates_to=approved.outbound_message_id, pharmacy=old))
    assert response.status_code == 400 and "Header/From" in answer_of(response).error_description
    approved.refresh_from_db()
    assert approved.status == "approved"


def test_rx_fill_unrelated_to_anything_is_refused(api, rx):
    response = post(api, rx_fill(rx, relates_to="NOT-OURS"))
    error = answer_of(response)
    assert error.error_code == "900" and "RelatesToMessageID" in error.error_description


# --- CancelRxResponse -----------------------------------------------------------------------------

def cancel_rx_response(cancel: OutboxMessage, *, pharmacy, response="Approved", message_id="PHM-CAN-1", **kw) -> str:
    sent = ncpdp.parse_message(cancel.payload)
    header = ncpdp.reply_header(sent, message_id=message_id)
    header.from_ = ncpdp.Party("P", pharmacy.ncpdp_id)
    return ncpdp.build_cancel_rx_response(header=header, response=response, **kw)


@pytest.fixture
def moved(pharmacist, rx):
    old = rx.pharmacy
    services.prescription_change_pharmacy(prescription_id=rx.pk, pharmacy=PharmacyFactory(), actor=pharmacist)
    rx.refresh_from_db()
    return rx, old, OutboxMessage.objects.get(kind="ncpdp:CancelRx")


def test_cancel_rx_response_approved_closes_the_cancellation(api, moved):
    rx, old, cancel = moved
    response = post(api, cancel_rx_response(cancel, pharmacy=old))
    assert response.status_code == 200, response.content
    status = answer_of(response)
    assert status.status_code == "010" and status.relates_to_message_id == "PHM-CAN-1"
    row = InboundNcpdpMessage.objects.get()
    assert row.answers_outbox == cancel and row.status == "processed"
    assert "confirmed the cancellation" in rx.history.latest().history_change_reason
    assert AuditEvent.objects.filter(kind="ncpdp.cancel_rx_approved", patient_id=rx.patient_id).exists()
    again = post(api, cancel_rx_response(cancel, pharmacy=old, message_id="PHM-CAN-2"))
    assert again.status_code == 400 and "already answered" in answer_of(again).error_description


def test_a_status_acknowledging_the_cancel_rx_does_not_count_as_its_answer(api, moved):
    rx, old, cancel = moved
    header = ncpdp.reply_header(ncpdp.parse_message(cancel.payload), message_id="PHM-ACK-1")
    header.from_ = ncpdp.Party("P", old.ncpdp_id)
    assert post(api, ncpdp.build_status(header=header)).status_code == 200  # receipt acknowledged
    response = post(api, cancel_rx_response(cancel, pharmacy=old, message_id="PHM-CAN-3"))
    assert response.status_code == 200, answer_of(response).error_description
    assert AuditEvent.objects.filter(kind="ncpdp.cancel_rx_approved").count() == 1


def test_cancel_rx_response_denied_is_recorded_with_its_reason(api, moved):
    rx, old, cancel = moved
    xml = cancel_rx_response(cancel, pharmacy=old, response="Denied", denial_reason="Already dispensed today")
    assert post(api, xml).status_code == 200
    event = AuditEvent.objects.get(kind="ncpdp.cancel_rx_denied")
    assert "Already dispensed today" in event.summary
    assert "refused the cancellation" in rx.history.latest().history_change_reason


def test_cancel_rx_response_from_a_pharmacy_it_was_not_sent_to_is_refused(api, moved):
    rx, old, cancel = moved
    response = post(api, cancel_rx_response(cancel, pharmacy=rx.pharmacy))  # the new pharmacy
    assert response.status_code == 400 and answer_of(response).error_code == "900"
    assert not AuditEvent.objects.filter(kind__startswith="ncpdp.cancel").exists()


# --- access and listing ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["pharmacist", "technician", "prescriber", "admin"])
def test_only_integrators_post_messages(api_client_for, rx, role):
    response = api_client_for(role).post(URL, data=renewal_request(rx), content_type="application/xml")
    assert response.status_code == 403
    assert not InboundNcpdpMessage.objects.exists()


def test_anonymous_is_refused(client, rx):
    assert client.post(URL, data=renewal_request(rx), content_type="application/xml").status_code in (401, 403)
    assert not InboundNcpdpMessage.objects.exists()


def test_integrator_lists_messages_with_answers_without_payload(api, rx):
    post(api, renewal_request(rx))
    post(api, "garbage")
    body = api.get("/api/v1/ncpdp/messages/").json()
    assert [m["status"] for m in body["results"]] == ["rejected", "processed"]
    assert "payload" not in body["results"][0] and body["results"][1]["answer"].startswith("<?xml")
    assert api.get("/api/v1/ncpdp/messages/?status=rejected").json()["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_message_posted_twice_at_once_is_processed_once(make_user):
    import threading

    from django.db import connection

    from refills.inbound import ncpdp_inbound_receive

    if connection.vendor != "postgresql":
        pytest.skip("concurrent unique-index waits need PostgreSQL")
    today = timezone.localdate()
    rx = PrescriptionFactory(rx_number="RX-CONC", refills_remaining=0, written_date=today - timedelta(days=200))
    xml = renewal_request(rx, message_id="PHM-TWIN").encode()
    user = make_user("integrator")
    bind(user, rx.pharmacy)
    barrier, answers = threading.Barrier(2), []

    def receive():
        barrier.wait()
        try:
            answers.append(ncpdp_inbound_receive(body=xml, user=user))
        finally:
            connection.close()

    threads = [threading.Thread(target=receive) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(answers) == 2 and answers[0].xml == answers[1].xml
    assert sorted(a.message.status for a in answers) == ["duplicate", "processed"]
    assert RefillRequest.objects.filter(prescription=rx).count() == 1


def test_every_history_row_of_an_inbound_message_names_actor_and_reason(api, rx):
    post(api, renewal_request(rx))
    post(api, "garbage")
    rows = InboundNcpdpMessage.history.all()
    assert rows.count() >= 5
    assert all(h.history_user.username == "system:ncpdp-inbound" and h.history_change_reason for h in rows)


# --- integrator accounts speak only for the pharmacies bound to them -----------------------------

def _refused_sender(response, pharmacy):
    assert response.status_code == 403
    error = answer_of(response)
    assert error.transaction == "Error" and error.error_code == "900"
    assert error.error_description == f"Header/From: sender NCPDP ID {pharmacy.ncpdp_id} is not authorised " \
                                      "for this API account"
    row = InboundNcpdpMessage.objects.order_by("-id").first()
    assert (row.status, row.http_status, row.error_code) == ("rejected", 403, "900")
    assert row.error == error.error_description and row.answer == response.content.decode()
    assert row.sender == f"P:{pharmacy.ncpdp_id}" and row.payload
    event = AuditEvent.objects.get(kind="ncpdp.sender_refused")
    assert event.actor_id == row.received_by_id and event.subject_id == str(row.pk)
    assert event.data["sender"] == f"P:{pharmacy.ncpdp_id}"
    return row


def test_bound_integrator_is_accepted(api_client_for, rx):
    client = api_client_for("integrator")
    bind(client.user, rx.pharmacy)
    response = post(client, renewal_request(rx), bind_all=False)
    assert response.status_code == 200, response.content
    assert RefillRequest.objects.filter(prescription=rx).count() == 1
    assert not AuditEvent.objects.filter(kind="ncpdp.sender_refused").exists()


def test_unbound_integrator_is_refused_with_403_and_nothing_changes(api_client_for, rx):
    client = api_client_for("integrator")
    response = post(client, renewal_request(rx), bind_all=False)
    row = _refused_sender(response, rx.pharmacy)
    assert row.transaction == "RxRenewalRequest" and row.refill_request is None
    assert not RefillRequest.objects.exists()
    assert rx.patient.last_name not in row.error and rx.rx_number not in row.error  # no PHI in the answer


def test_unbound_integrator_cannot_report_a_fill(api_client_for, approved):
    client = api_client_for("integrator")
    response = post(client, rx_fill(approved.prescription, relates_to=approved.outbound_message_id), bind_all=False)
    _refused_sender(response, approved.prescription.pharmacy)
    approved.refresh_from_db()
    assert approved.status == "approved"
    assert not Fill.objects.filter(external_reference="PHM-FILL-1").exists()


def test_binding_to_one_pharmacy_does_not_allow_posting_as_another(api_client_for, approved, moved):
    rx, old, cancel = moved
    client = api_client_for("integrator")
    bind(client.user, rx.pharmacy)  # the new pharmacy only
    response = post(client, cancel_rx_response(cancel, pharmacy=old), bind_all=False)
    _refused_sender(response, old)
    assert not AuditEvent.objects.filter(kind__startswith="ncpdp.cancel").exists()
    other = approved.prescription.pharmacy
    fill = post(client, rx_fill(approved.prescription, relates_to=approved.outbound_message_id), bind_all=False)
    assert fill.status_code == 403 and other.ncpdp_id in answer_of(fill).error_description
    assert not Fill.objects.filter(external_reference="PHM-FILL-1").exists()


def test_unbound_integrator_replaying_a_processed_message_gets_no_first_answer(api, api_client_for, rx):
    first = post(api, renewal_request(rx))
    assert first.status_code == 200
    stranger = api_client_for("integrator")
    replay = post(stranger, renewal_request(rx), bind_all=False)
    assert replay.status_code == 403 and replay.content != first.content
    assert [r.status for r in InboundNcpdpMessage.objects.order_by("id")] == ["processed", "rejected"]
    assert RefillRequest.objects.count() == 1


def test_admin_may_post_as_any_pharmacy(api_client_for, make_user, rx):
    from django.contrib.auth.models import Group

    user = make_user("integrator")
    user.groups.add(Group.objects.get(name="admin"))
    response = post(api_client_for(user=user), renewal_request(rx), bind_all=False)
    assert response.status_code == 200, response.content
    assert RefillRequest.objects.filter(prescription=rx).count() == 1


def test_binding_is_kept_in_the_pharmacy_history(integrator, admin_user):
    pharmacy = PharmacyFactory()
    stamp(pharmacy, actor=admin_user, reason="Partner onboarding ticket 42")
    pharmacy.integrator_users.add(integrator)
    latest = pharmacy.history.latest()
    assert latest.history_user == admin_user and latest.history_change_reason == "Partner onboarding ticket 42"
    assert [m.user_id for m in latest.integrator_users.all()] == [integrator.pk]


def test_admin_binds_integrator_accounts_on_the_pharmacy_page(client, make_user, integrator):
    admin = make_user("admin", is_staff=True, is_superuser=True)
    pharmacist = make_user("pharmacist")
    pharmacy = PharmacyFactory()
    client.force_login(admin)
    url = f"/admin/pharmacy/pharmacy/{pharmacy.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    offered = {value.value for value, _ in page.context["adminform"].form.fields["integrator_users"].choices}
    assert integrator.pk in offered and pharmacist.pk not in offered  # integrator accounts only
    form = page.context["adminform"].form
    data = {k: (v if v is not None else "") for k, v in form.initial.items() if k != "integrator_users"}
    data["integrator_users"] = [integrator.pk]
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert list(pharmacy.integrator_users.all()) == [integrator]
    latest = pharmacy.history.latest()
    assert latest.history_user == admin and "integrator_users" in latest.history_change_reason


def test_an_integrator_lists_only_its_own_trading_partners_messages(api_client_for, make_user, api, rx):
    from tests.factories import PharmacyFactory

    post(api, renewal_request(rx))  # `api` is bound to the prescription's pharmacy
    other = make_user("integrator", username="other-integrator")
    PharmacyFactory().integrator_users.add(other)
    assert api_client_for(user=other).get("/api/v1/ncpdp/messages/").json()["count"] == 0
    assert api.get("/api/v1/ncpdp/messages/").json()["count"] == 1
    assert api_client_for("admin").get("/api/v1/ncpdp/messages/").json()["count"] == 1
