"""Patient and pet-owner messages: approved, denied (call the office), ready for pickup; once per
event, by consent and contact preference, first name and drug name only."""
import pytest
from django.core import mail

from pharmacy.messaging.outbox import outbox_deliver
from pharmacy.models import OutboxMessage
from refills import notifications, services
from refills.choices import RefillStatus
from tests.factories import (
    AnimalFactory,
    DrugFactory,
    PatientFactory,
    PrescriptionFactory,
    VeterinarianFactory,
)

pytestmark = pytest.mark.django_db
S = RefillStatus


def patient_messages():
    return OutboxMessage.objects.filter(dedupe_key__startswith="patient-message:")


@pytest.fixture
def rx_for(db):
    def make(**patient_kwargs):
        return PrescriptionFactory(patient=PatientFactory(first_name="Maria", last_name="Gonzalez-Whitaker",
                                                          **patient_kwargs),
                                   drug=DrugFactory(name="atorvastatin", strength="40 mg"))
    return make


def assert_minimum_necessary(text, req):
    patient, rx = req.patient, req.prescription
    for phi in (patient.last_name, str(patient.birth_date), patient.birth_date.strftime("%m/%d/%Y"), patient.mrn,
                rx.drug.strength, rx.sig, rx.rx_number or "\x00", rx.prescriber.last_name, rx.pharmacy.name):
        assert phi not in text, phi


def test_approval_texts_the_patient_once_with_first_name_and_drug(make_request, pharmacist, rx_for):
    req = make_request(prescription=rx_for())
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    message = patient_messages().get()
    assert (message.transport, message.kind, message.destination) == ("sms", "sms:refill-approved", req.patient.phone)
    assert message.payload.startswith("Hi Maria,") and "atorvastatin" in message.payload
    assert_minimum_necessary(message.payload + message.subject, req)
    # The same event again (a retried hook, a second call) queues nothing new.
    req.refresh_from_db()
    assert notifications.notify_refill_decision(req).pk == message.pk
    assert patient_messages().count() == 1


def test_denial_asks_to_call_the_office_by_email(make_request, pharmacist, rx_for):
    req = make_request(prescription=rx_for(contact_preference="email"))
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Overdue for labs; see the doctor")
    message = patient_messages().get()
    assert (message.transport, message.kind) == ("email", "email:refill-denied")
    assert "Please call the office" in message.payload and "labs" not in message.payload
    assert_minimum_necessary(message.payload + message.subject, req)
    outbox_deliver(outbox_id=message.pk)
    sent = mail.outbox[-1]
    assert sent.to == [req.patient.email] and sent.body == message.payload
    assert "Maria" not in sent.subject and "atorvastatin" not in sent.subject


def test_fill_tells_the_patient_ready_for_pickup_once(make_request, pharmacist, rx_for):
    req = make_request(prescription=rx_for(), status=S.SENT_TO_PHARMACY)
    services.refill_request_record_fill(request_id=req.pk, actor=pharmacist, fill_status="Dispensed")
    message = patient_messages().get(kind="sms:refill-ready")
    assert message.payload == "Hi Maria, your atorvastatin is ready for pickup."
    req.refresh_from_db()
    notifications.notify_ready_for_pickup(req)
    assert patient_messages().filter(kind="sms:refill-ready").count() == 1


def test_partial_fill_and_not_dispensed_say_nothing(make_request, pharmacist, rx_for):
    for status in ("PartiallyDispensed", "NotDispensed"):
        req = make_request(prescription=rx_for(), status=S.SENT_TO_PHARMACY)
        services.refill_request_record_fill(request_id=req.pk, actor=pharmacist, fill_status=status)
    assert not patient_messages().exists()


@pytest.mark.parametrize(("consent", "preference"), [(False, "sms"), (False, "email"), (True, "phone"),
                                                     (True, "none")])
def test_no_message_without_consent_or_by_phone_or_none(make_request, pharmacist, rx_for, consent, preference):
    req = make_request(prescription=rx_for(consent_to_messages=consent, contact_preference=preference))
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    req.refresh_from_db()
    assert req.status == S.APPROVED, "the decision stands without a message"
    assert not patient_messages().exists()


def test_animal_messages_go_to_the_owner_by_first_name(make_request, pharmacist):
    dog = AnimalFactory(first_name="Biscuit", owner_first_name="Rita", owner_last_name="Moreno",
                        phone="617-555-0199", contact_preference="sms")
    rx = PrescriptionFactory(patient=dog, prescriber=VeterinarianFactory(),
                             drug=DrugFactory(name="carprofen", species="veterinary", therapeutic_class="nsaid"))
    req = make_request(prescription=rx)
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    message = patient_messages().get()
    assert message.destination == dog.phone
    assert message.payload.startswith("Hi Rita, Biscuit's refill of carprofen was approved")
    assert "Moreno" not in message.payload and dog.breed not in message.payload


def test_prescriber_answer_by_link_tells_the_patient(make_request, pharmacist, rx_for):
    from refills import links
    from refills.models import PrescriberLink

    req = make_request(prescription=rx_for())
    services.refill_request_forward(request_id=req.pk, actor=pharmacist)
    assert not patient_messages().exists(), "forwarding is not news for the patient"
    token = links.link_token(PrescriberLink.objects.get(request=req))
    links.prescriber_link_answer(token=token, decision="deny", reason="Needs a visit")
    assert patient_messages().get().kind == "sms:refill-denied"


def test_a_failing_message_never_undoes_the_decision(make_request, pharmacist, rx_for, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("SMS gateway misconfigured")

    monkeypatch.setattr(notifications, "patient_message_enqueue", broken)
    req = make_request(prescription=rx_for())
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    req.refresh_from_db()
    assert req.status == S.APPROVED and not patient_messages().exists()


def test_http_sms_backend_posts_the_text(make_request, pharmacist, rx_for, settings, monkeypatch, http_receiver):
    settings.RXHUB = {**settings.RXHUB, "SMS_BACKEND": "pharmacy.messaging.transports.HttpSmsBackend",
                      "SMS_URL": http_receiver.url + "/sms", "SMS_TOKEN": "sms-secret"}
    req = make_request(prescription=rx_for())
    services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    message = patient_messages().get()
    assert outbox_deliver(outbox_id=message.pk).status == "sent"
    (sent,) = http_receiver.requests
    assert sent["headers"]["authorization"] == "Bearer sms-secret"
    assert sent["headers"]["idempotency-key"] == message.message_id
    assert '"text": "Hi Maria, your refill of atorvastatin was approved.' in sent["body"]


def test_protocol_auto_approval_tells_the_patient(due_prescription, ace_rule, pharmacist):
    ace_rule("auto")
    req = services.refill_request_open(prescription=due_prescription, actor=pharmacist, source="staff")
    assert req.status == S.AUTO_APPROVED
    message = patient_messages().get()
    assert message.kind == "sms:refill-approved" and due_prescription.drug.name in message.payload


@pytest.mark.django_db(transaction=True)
def test_notification_survives_a_crash_right_after_the_decision_commits(make_request, pharmacist, rx_for,
                                                                        monkeypatch):
    """The patient's message is an outbox row written in the decision's transaction: when the
    process dies right after the commit (here the on-commit delivery scheduling raises), the
    decision and the message are both on file, and the message is delivered later."""
    from pharmacy.messaging import outbox

    req = make_request(prescription=rx_for())

    def killed(outbox_id):
        raise SystemExit("worker killed right after the commit")

    monkeypatch.setattr(outbox, "schedule_delivery", killed)
    with pytest.raises(SystemExit):
        services.refill_request_approve(request_id=req.pk, actor=pharmacist)
    req.refresh_from_db()
    assert req.status == S.APPROVED
    message = patient_messages().get()
    assert (message.kind, message.status) == ("sms:refill-approved", "pending")
    assert outbox_deliver(outbox_id=message.pk).status == "sent"
