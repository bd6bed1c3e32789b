"""Prescriber approval links: created on forward, no PHI and no token at rest, single use, bound to
the request and the prescriber, expiring; reminders and escalation to the pharmacist queue."""
import hashlib
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from pharmacy.errors import DomainError
from pharmacy.messaging.outbox import outbox_deliver
from pharmacy.models import OutboxMessage, Prescription
from refills import links, services
from refills.choices import LinkStatus, RefillStatus
from refills.links import LinkClosed, LinkExpired, LinkNotFound, LinkUsed, LinkWrongPrescriber
from refills.models import PrescriberLink, RefillRequest
from refills.tasks import SCHEDULES
from tests.factories import DrugFactory, FillFactory, PrescriberFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
S = RefillStatus


@pytest.fixture
def forwarded(make_request, pharmacist):
    """A renewal (no refills left) forwarded by the pharmacist: returns (request, link, token)."""
    def make(prescriber=None, **rx_kwargs):
        rx_kwargs.setdefault("refills_remaining", 0)
        rx_kwargs.setdefault("refills_authorized", 3)
        if prescriber is not None:
            rx_kwargs["prescriber"] = prescriber
        rx = PrescriptionFactory(**rx_kwargs)
        FillFactory(prescription=rx)
        req = make_request(prescription=rx, kind="renewal",
                           eligibility=[{"code": "no_refills", "message": "No refills remain.", "blocking": True,
                                         "citation": ""}])
        services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="Please renew")
        link = PrescriberLink.objects.get(request=req)
        return RefillRequest.objects.get(pk=req.pk), link, links.link_token(link)
    return make


def link_path(token):
    return f"/refills/link/{token}/"


# --- creating and sending ------------------------------------------------------------------------

def test_forward_creates_link_stored_only_as_hash_with_72h_expiry(forwarded):
    before = timezone.now()
    req, link, token = forwarded()
    assert req.status == S.AWAITING_PRESCRIBER
    assert link.status == LinkStatus.ACTIVE and link.prescriber_id == req.prescriber_id
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert timedelta(hours=71, minutes=59) < link.expires_at - before <= timedelta(hours=72, seconds=5)
    assert len(token) >= 43
    stored = [str(v) for row in PrescriberLink.history.filter(id=link.pk).values() for v in row.values()]
    stored += [m.payload + m.subject for m in OutboxMessage.objects.all()]
    stored += [m.payload for m in OutboxMessage.history.all()]
    assert not any(token in value for value in stored), "the token is at rest nowhere"
    assert AuditEvent.objects.filter(kind="refill.link_created", subject_id=str(req.pk)).exists()


def test_link_message_has_no_phi_and_gets_the_url_only_at_delivery(forwarded, settings):
    settings.RXHUB = {**settings.RXHUB, "PUBLIC_BASE_URL": "https://hub.example.org"}
    req, link, token = forwarded()
    message = OutboxMessage.objects.get(kind="email:prescriber-link")
    assert message.destination == link.prescriber.email and links.PLACEHOLDER in message.payload
    patient, rx = req.patient, req.prescription
    for phi in (patient.first_name, patient.last_name, str(patient.birth_date), patient.mrn, rx.drug.name, rx.sig):
        assert phi not in message.payload and phi not in message.subject
    outbox_deliver(outbox_id=message.pk)
    sent = mail.outbox[-1]
    assert f"https://hub.example.org/refills/link/{token}/" in sent.body
    assert patient.last_name not in sent.body and rx.drug.name not in sent.body
    message.refresh_from_db()
    assert message.status == "sent" and token not in message.payload


@pytest.mark.parametrize(("preference", "phone", "expected"), [
    ("email", "", ["email"]), ("sms", "617-555-0100", ["sms"]), ("both", "617-555-0100", ["email", "sms"]),
    ("sms", "", ["email"]),  # no mobile number on file: falls back to e-mail
])
def test_link_goes_by_the_prescribers_preference(forwarded, preference, phone, expected):
    req, link, _ = forwarded(prescriber=PrescriberFactory(link_preference=preference, phone=phone))
    assert sorted(link.channels) == expected
    assert sorted(OutboxMessage.objects.filter(related_model="refills.prescriberlink").values_list(
        "transport", flat=True)) == expected


class _RecordingSmsBackend:
    sent: list[dict] = []

    def send(self, *, to: str, text: str, message_id: str) -> str:
        self.sent.append({"to": to, "text": text})
        return "recorded"


def test_sms_link_is_rendered_for_the_sms_backend(forwarded, settings, caplog):
    settings.RXHUB = {**settings.RXHUB, "SMS_BACKEND": f"{__name__}._RecordingSmsBackend"}
    _RecordingSmsBackend.sent.clear()
    req, link, token = forwarded(prescriber=PrescriberFactory(link_preference="sms", phone="617-555-0100"))
    message = OutboxMessage.objects.get(kind="sms:prescriber-link")
    outbox_deliver(outbox_id=message.pk)
    # The live link is rendered only for the backend at delivery, never stored in the outbox row.
    (sent,) = _RecordingSmsBackend.sent
    assert token in sent["text"] and req.patient.first_name not in sent["text"]
    message.refresh_from_db()
    assert token not in message.payload


def test_console_sms_backend_logs_neither_the_link_nor_the_text(forwarded, caplog, capsys):
    req, link, token = forwarded(prescriber=PrescriberFactory(link_preference="sms", phone="617-555-0100"))
    message = OutboxMessage.objects.get(kind="sms:prescriber-link")
    with caplog.at_level("INFO"):
        outbox_deliver(outbox_id=message.pk)
    printed = caplog.text + "".join(capsys.readouterr())
    assert "[sms]" in printed and token not in printed and "617-555-0100" not in printed


def test_forward_refused_when_prescriber_has_no_email_or_phone(make_request, pharmacist):
    rx = PrescriptionFactory(prescriber=PrescriberFactory(email="", phone=""))
    req = make_request(prescription=rx)
    with pytest.raises(DomainError) as info:
        services.refill_request_forward(request_id=req.pk, actor=pharmacist)
    assert info.value.code == "prescriber_unreachable"
    req.refresh_from_db()
    assert req.status == S.NEEDS_REVIEW and not PrescriberLink.objects.exists()


def test_forwarding_again_revokes_the_older_link(forwarded, pharmacist):
    req, first, first_token = forwarded()
    links.prescriber_links_process(now=first.expires_at + timedelta(minutes=1))  # escalated to needs_review
    services.refill_request_forward(request_id=req.pk, actor=pharmacist)
    second = PrescriberLink.objects.filter(request=req).exclude(pk=first.pk).get()
    assert second.status == LinkStatus.ACTIVE
    with pytest.raises(LinkExpired):
        links.prescriber_link_open(token=first_token)
    assert links.prescriber_link_open(token=links.link_token(second)).pk == second.pk


# --- the page --------------------------------------------------------------------------------------

def test_valid_link_page_shows_the_request_with_context(client, forwarded):
    req, link, token = forwarded()
    response = client.get(link_path(token))
    assert response.status_code == 200
    body = response.content.decode()
    rx = req.prescription
    for text in (rx.drug.name, rx.sig, "No refills remain.", str(req.patient.last_visit_date), "Fill history",
                 "Approve with changes", "Deny"):
        assert text in body, text
    assert response["Referrer-Policy"] == "same-origin" and "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(kind="refill.link_viewed", subject_id=str(req.pk)).exists()


def test_approve_through_the_page_uses_the_link_once(client, forwarded):
    req, link, token = forwarded()
    response = client.post(link_path(token), {"decision": "approve", "note": "Seen last month"})
    assert response.status_code == 302 and response["Location"] == "/refills/link/done/"
    assert "Approved" in client.get("/refills/link/done/").content.decode()
    req.refresh_from_db()
    link.refresh_from_db()
    assert req.status == S.APPROVED and req.decided_by.username == "system:prescriber-link"
    assert "via signed link" in req.note and "Seen last month" in req.note
    assert link.status == LinkStatus.USED and link.used_at and link.used_from_ip == "127.0.0.1"
    assert OutboxMessage.objects.filter(kind="ncpdp:NewRx", related_id=str(req.pk)).count() == 1
    event = AuditEvent.objects.get(kind="refill.link_used")
    assert event.data["prescriber_id"] == link.prescriber_id and event.data["decision"] == "approve"
    # Reused: a clear page, nothing changes.
    again = client.post(link_path(token), {"decision": "deny", "reason": "changed my mind"})
    assert again.status_code == 410 and "already been used" in again.content.decode()
    req.refresh_from_db()
    assert req.status == S.APPROVED
    assert OutboxMessage.objects.filter(kind__startswith="ncpdp:", related_id=str(req.pk)).count() == 1
    assert client.get(link_path(token)).status_code == 410


def test_approve_with_changes_renews_with_the_prescribers_numbers(client, forwarded):
    req, link, token = forwarded()
    response = client.post(link_path(token), {"decision": "approve_with_changes", "quantity": "90",
                                              "days_supply": "90", "refills": "1"})
    assert response.status_code == 302
    req.refresh_from_db()
    rx = Prescription.objects.get(pk=req.prescription_id)
    assert req.status == S.APPROVED_WITH_CHANGES
    assert (req.approved_quantity, req.approved_days_supply, req.approved_refills) == (Decimal("90"), 90, 1)
    assert (rx.quantity, rx.days_supply, rx.refills_remaining) == (Decimal("90"), 90, 1)


def test_approve_with_changes_that_change_nothing_is_refused(client, forwarded):
    req, link, token = forwarded()
    rx = req.prescription
    response = client.post(
        link_path(token),
        {
            "decision": "approve_with_changes",
            "quantity": str(rx.quantity),
            "days_supply": str(rx.days_supply),
            "refills": str(rx.refills_authorized),
        },
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Nothing was recorded yet" in body and "Approve as written" in body
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE


def test_deny_through_the_page_needs_a_reason(client, forwarded):
    req, link, token = forwarded()
    refused = client.post(link_path(token), {"decision": "deny", "reason_code": "AF", "reason": " "})
    body = refused.content.decode()
    assert refused.status_code == 200 and "Nothing was recorded yet" in body and "reason for the denial" in body
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE
    response = client.post(link_path(token), {"decision": "deny", "reason_code": "AF",
                                              "reason": "Needs an office visit"})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.status == S.DENIED and req.denial_reason.startswith("Needs an office visit")


def test_expired_link_gets_a_clear_page_and_changes_nothing(client, forwarded):
    req, link, token = forwarded()
    PrescriberLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(link_path(token))
    assert page.status_code == 410 and "expired" in page.content.decode()
    answer = client.post(link_path(token), {"decision": "approve"})
    assert answer.status_code == 410
    with pytest.raises(LinkExpired):
        links.prescriber_link_answer(token=token, decision="approve")
    req.refresh_from_db()
    link.refresh_from_db()
    assert req.status == S.AWAITING_PRESCRIBER and link.status == LinkStatus.ACTIVE and link.used_at is None


def test_tampered_link_is_not_found_and_changes_nothing(client, forwarded):
    req, link, token = forwarded()
    tampered = ("A" if token[0] != "A" else "B") + token[1:]
    for bad in (tampered, token[:-1], token + "x"):
        assert client.get(link_path(bad)).status_code == 404
        assert client.post(link_path(bad), {"decision": "approve"}).status_code == 404
    req.refresh_from_db()
    assert req.status == S.AWAITING_PRESCRIBER
    with pytest.raises(LinkNotFound):
        links.prescriber_link_answer(token="", decision="approve")


def test_link_of_another_prescriber_is_refused(client, forwarded):
    req, link, token = forwarded()
    RefillRequest.objects.filter(pk=req.pk).update(prescriber=PrescriberFactory())  # the request moved on
    page = client.post(link_path(token), {"decision": "approve"})
    assert page.status_code == 403 and "another prescriber" in page.content.decode()
    with pytest.raises(LinkWrongPrescriber):
        links.prescriber_link_answer(token=token, decision="approve")
    req.refresh_from_db()
    link.refresh_from_db()
    assert req.status == S.AWAITING_PRESCRIBER and link.status == LinkStatus.ACTIVE


def test_link_after_the_pharmacist_decided_is_closed(client, forwarded, pharmacist):
    req, link, token = forwarded()
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Patient stopped the drug")
    response = client.get(link_path(token))
    assert response.status_code == 410 and "denied" in response.content.decode()
    with pytest.raises(LinkClosed):
        links.prescriber_link_answer(token=token, decision="approve")


def test_invalid_change_rolls_back_the_link_use(forwarded):
    # Issue 13: was a Schedule IV renewal approved with 6 refills; a controlled renewal is now
    # refused outright (epcs_required, below), so the invalid change is 99 refills on 30 days.
    req, link, token = forwarded()
    with pytest.raises(ValidationError) as exc:
        links.prescriber_link_answer(token=token, decision="approve_with_changes", refills=99)
    assert "maximum authorization of 365 days" in str(exc.value)
    link.refresh_from_db()
    req.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE and req.status == S.AWAITING_PRESCRIBER
    assert not AuditEvent.objects.filter(kind="refill.link_used").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_answers_give_one_decision(forwarded):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    req, link, token = forwarded()
    barrier, outcomes = threading.Barrier(2), []

    def answer(decision):
        barrier.wait()
        try:
            links.prescriber_link_answer(token=token, decision=decision, reason="no")
            outcomes.append("answered")
        except LinkUsed:
            outcomes.append("used")
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(d,)) for d in ("approve", "deny")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == ["answered", "used"]
    req.refresh_from_db()
    # An approval may already have been delivered (sent_to_pharmacy) by the time we look; what
    # matters is that exactly one decision was recorded.
    assert req.status in (S.APPROVED, S.DENIED, S.SENT_TO_PHARMACY)
    assert (
        AuditEvent.objects.filter(kind__in=["refill.approved", "refill.approved_with_changes", "refill.denied"]).count()
        == 1
    )
    assert len(set(req.history.exclude(decided_at=None).values_list("decided_at", flat=True))) == 1
    assert AuditEvent.objects.filter(kind="refill.link_used").count() == 1


# --- reminders and escalation ---------------------------------------------------------------------

def test_unanswered_link_is_reminded_once_after_24h(forwarded):
    req, link, token = forwarded()
    assert links.prescriber_links_process(now=link.created_at + timedelta(hours=23)).reminded == 0
    later = link.created_at + timedelta(hours=25)
    assert links.prescriber_links_process(now=later).reminded == 1
    assert links.prescriber_links_process(now=later + timedelta(hours=1)).reminded == 0
    reminders = OutboxMessage.objects.filter(kind="email:prescriber-link-reminder")
    assert reminders.count() == 1
    assert links.PLACEHOLDER in reminders.get().payload and req.patient.last_name not in reminders.get().payload
    outbox_deliver(outbox_id=reminders.get().pk)
    assert token in mail.outbox[-1].body and "reminder" in mail.outbox[-1].subject.lower()
    link.refresh_from_db()
    assert link.reminded_at == later and link.status == LinkStatus.ACTIVE


def test_answered_link_is_not_reminded(forwarded):
    req, link, token = forwarded()
    links.prescriber_link_answer(token=token, decision="approve")
    run = links.prescriber_links_process(now=link.created_at + timedelta(hours=25))
    assert run.reminded == 0 and not OutboxMessage.objects.filter(kind__contains="reminder").exists()


def test_expired_link_escalates_to_the_pharmacist_queue(forwarded):
    req, link, token = forwarded()
    run = links.prescriber_links_process(now=link.expires_at + timedelta(minutes=1))
    assert (run.expired, run.escalated) == (1, 1)
    req.refresh_from_db()
    link.refresh_from_db()
    assert link.status == LinkStatus.EXPIRED and req.status == S.NEEDS_REVIEW
    assert "did not answer" in req.note
    steps = [(h.status, h.history_change_reason) for h in req.history.order_by("history_date", "history_id")][-2:]
    assert steps[0][0] == S.EXPIRED and steps[1][0] == S.NEEDS_REVIEW
    assert "Escalated to the pharmacist queue" in steps[1][1]
    assert req.history.latest().history_user.username == "system:prescriber-link"
    assert AuditEvent.objects.filter(kind="refill.link_expired", subject_id=str(req.pk)).exists()
    again = links.prescriber_links_process(now=link.expires_at + timedelta(hours=1))
    assert (again.expired, again.escalated) == (0, 0)


def test_expiry_after_a_pharmacist_decision_leaves_the_request_alone(forwarded, pharmacist):
    # Issue 13: the pharmacist's decision was an approval of a renewal; a pharmacist may deny one.
    req, link, token = forwarded()
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Office says stopped", reason_code="DA")
    run = links.prescriber_links_process(now=link.expires_at + timedelta(minutes=1))
    assert (run.expired, run.escalated) == (1, 0)
    req.refresh_from_db()
    assert req.status == S.DENIED


def test_controlled_renewal_approve_through_link_is_refused_epcs_required(forwarded):
    drug = DrugFactory(name="tramadol", dea_schedule="4", therapeutic_class="opioid_analgesic")
    req, link, token = forwarded(drug=drug)
    with pytest.raises(DomainError) as exc:
        links.prescriber_link_answer(token=token, decision="approve_with_changes", refills=2)
    assert exc.value.code == "epcs_required"
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE


def test_link_hours_and_reminder_hours_come_from_settings(forwarded, settings):
    settings.RXHUB = {**settings.RXHUB, "PRESCRIBER_LINK_HOURS": 8, "PRESCRIBER_REMINDER_HOURS": 2}
    req, link, token = forwarded()
    assert link.expires_at - link.created_at < timedelta(hours=8, seconds=5)
    assert links.prescriber_links_process(now=link.created_at + timedelta(hours=3)).reminded == 1


def test_command_and_schedule_run_the_same_work(forwarded, capsys):
    req, link, token = forwarded()
    PrescriberLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    call_command("process_prescriber_links")
    assert "1 expired, 1 escalated" in capsys.readouterr().out
    spec = next(s for s in SCHEDULES if s["name"] == "rxhub:prescriber-links")
    assert spec["func"] == "refills.tasks.process_prescriber_links"
    from refills.tasks import process_prescriber_links

    assert process_prescriber_links().startswith("0 reminded")


def test_pharmacist_sees_the_link_state_on_the_request_page(client, forwarded, pharmacist):
    req, link, token = forwarded()
    client.force_login(pharmacist)
    body = client.get(f"/refills/{req.pk}/").content.decode()
    assert "Prescriber approval links" in body and "Active" in body and "by email" in body
    assert token not in body


def test_a_refused_decision_is_shown_on_the_page_and_keeps_the_link(client, make_request, pharmacist):
    rx = PrescriptionFactory(refills_remaining=0)
    req = make_request(prescription=rx, kind="refill")  # a refill with nothing left to authorize
    services.refill_request_forward(request_id=req.pk, actor=pharmacist)
    link = PrescriberLink.objects.get(request=req)
    response = client.post(link_path(links.link_token(link)), {"decision": "approve"})
    assert response.status_code == 200 and "a renewal is needed" in response.content.decode()
    link.refresh_from_db()
    req.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE and req.status == S.AWAITING_PRESCRIBER


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_escalate_once(forwarded):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    req, link, token = forwarded()
    when = link.expires_at + timedelta(minutes=1)
    barrier, runs = threading.Barrier(2), []

    def run():
        barrier.wait()
        try:
            runs.append(links.prescriber_links_process(now=when))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(r.escalated for r in runs) == 1 and sum(r.expired for r in runs) == 1
    req.refresh_from_db()
    assert req.status == S.NEEDS_REVIEW
    assert [h.status for h in req.history.order_by("history_date", "history_id")].count(S.EXPIRED) == 1


def test_link_page_costs_fixed_queries(client, forwarded):
    from django.test.utils import CaptureQueriesContext

    counts = []
    client.get(link_path(forwarded()[2]))  # warm: session, system-actor user, audit chain head
    for fills in (1, 8):
        req, link, token = forwarded()
        for _ in range(fills - 1):
            FillFactory(prescription=req.prescription)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(link_path(token)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
