"""One write path for fills (issue 12): every creation path records the fill through
``pharmacy.services.fill_record``, which calls the apps' ``fill_recorded`` registry hooks in the
fill's transaction — reconciliation queues the EHR dispense share (FHIR MedicationDispense) as an
outbox row with the acting person. No ``post_save`` receiver is involved."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from pharmacy import services as core_services
from pharmacy.actors import system_actor
from pharmacy.models import Fill, OutboxMessage
from pharmacy.services import fill_record, fill_record_many
from reconciliation.models import EhrLink
from refills import services as refill_services
from refills.choices import RefillStatus
from refills.models import RefillRequest
from tests.factories import FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db

DISPENSE = "fhir:MedicationDispense"


@pytest.fixture
def rx(db):
    """A prescription whose patient's EHR link has consent to exchange (shares are queued)."""
    rx = PrescriptionFactory()
    EhrLink.objects.create(patient=rx.patient, ehr_system="GENHOSP", external_id="MRN-F1", consent_to_exchange=True)
    return rx


def _one_share_by(user, fill: Fill) -> OutboxMessage:
    [message] = OutboxMessage.objects.filter(kind=DISPENSE)
    assert message.related_id == str(fill.pk) and f'"id": "fill-{fill.pk}"' in message.payload
    assert message.history.earliest().history_user == user
    return message


def test_service_records_the_fill_with_history_and_queues_one_share_by_the_actor(rx, pharmacist):
    fill = fill_record(fill=Fill(prescription=rx, fill_date=timezone.localdate(), quantity=Decimal("30"),
                                 days_supply=30, pharmacy=rx.pharmacy), actor=pharmacist, reason="Counted and bagged")
    created = fill.history.get()
    assert created.history_user == pharmacist and created.history_change_reason == "Counted and bagged"
    _one_share_by(pharmacist, fill)


def test_share_rolls_back_with_the_fill(rx, pharmacist):
    with pytest.raises(RuntimeError), transaction.atomic():
        FillFactory(prescription=rx, actor=pharmacist)
        assert OutboxMessage.objects.filter(kind=DISPENSE).count() == 1
        raise RuntimeError("crash before commit")
    assert not Fill.objects.filter(prescription=rx).exists()
    assert not OutboxMessage.objects.filter(kind=DISPENSE).exists()


def test_a_failing_hook_rolls_back_the_fill(rx, pharmacist, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("hook failed")

    monkeypatch.setattr(core_services, "fill_recorded_hooks", lambda: [broken])
    with pytest.raises(RuntimeError):
        FillFactory(prescription=rx, actor=pharmacist)
    assert not Fill.objects.filter(prescription=rx).exists()


def test_system_actor_fills_are_recorded_but_not_shared(rx):
    FillFactory(prescription=rx)  # factories record as system:maintenance
    fill_record_many(fills=[Fill(prescription=rx, fill_date=timezone.localdate() - timedelta(days=d),
                                 quantity=Decimal("30"), days_supply=30, pharmacy=rx.pharmacy) for d in (30, 60)],
                     actor=system_actor("system:demo-seed"), reason="Demo data")
    assert Fill.objects.filter(prescription=rx).count() == 3
    assert not OutboxMessage.objects.filter(kind=DISPENSE).exists()


def test_saving_a_fill_outside_the_service_queues_nothing(rx, pharmacist):
    """The share comes from the service call, not from saving the row (no post_save receiver)."""
    Fill.objects.create(prescription=rx, fill_date=timezone.localdate(), quantity=Decimal("30"), days_supply=30)
    assert not OutboxMessage.objects.filter(kind=DISPENSE).exists()


def test_bulk_record_calls_the_hooks_once_per_fill(rx, pharmacist, monkeypatch):
    heard = []
    monkeypatch.setattr(core_services, "fill_recorded_hooks",
                        lambda: [lambda *, fill, actor, reason: heard.append((fill.pk, actor, reason))])
    fills = fill_record_many(fills=[Fill(prescription=rx, fill_date=timezone.localdate() - timedelta(days=d),
                                         quantity=Decimal("30"), days_supply=30) for d in (1, 31)],
                             actor=pharmacist, reason="Imported")
    assert sorted(heard) == sorted((f.pk, pharmacist, "Imported") for f in fills) and all(f.pk for f in fills)


def test_refill_fill_report_queues_one_share_by_the_reporting_user(rx, pharmacist):
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status=RefillStatus.SENT_TO_PHARMACY,
                                       pharmacy=rx.pharmacy, prescriber=rx.prescriber)
    refill_services.refill_request_record_fill(request_id=req.pk, actor=pharmacist, fill_status="Dispensed",
                                               quantity="30", days_supply=30, reference="RXF-1")
    fill = Fill.objects.get(external_reference="RXF-1")
    assert fill.history.get().history_user == pharmacist
    _one_share_by(pharmacist, fill)


def test_api_fill_create_queues_one_share_by_the_api_user(rx, api_client_for):
    api = api_client_for("pharmacist")
    response = api.post("/api/v1/fills/", {"prescription": rx.pk, "fill_date": str(timezone.localdate()),
                                           "quantity": "30", "days_supply": 30, "pharmacy": rx.pharmacy.pk,
                                           "status": "dispensed"}, format="json")
    assert response.status_code == 201, response.json()
    fill = Fill.objects.get(pk=response.json()["id"])
    assert fill.history.get().history_change_reason == "fill created through the API"
    _one_share_by(api.user, fill)


@pytest.fixture
def superuser_client(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    client.user = admin_user
    return client


def test_fill_admin_add_queues_one_share_by_the_admin(rx, superuser_client):
    response = superuser_client.post("/admin/pharmacy/fill/add/", {
        "prescription": rx.pk, "fill_date": str(timezone.localdate()), "quantity": "30", "days_supply": 30,
        "pharmacy": rx.pharmacy.pk, "status": "dispensed", "external_reference": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    fill = Fill.objects.get(prescription=rx)
    assert fill.history.get().history_change_reason == "Created in admin"
    _one_share_by(superuser_client.user, fill)


def test_prescription_admin_inline_fill_queues_one_share_and_edits_queue_none(rx, superuser_client):
    url = f"/admin/pharmacy/prescription/{rx.pk}/change/"
    page = superuser_client.get(url)
    assert page.status_code == 200
    data = {}
    for name, field in page.context["adminform"].form.fields.items():
        value = page.context["adminform"].form.initial.get(name, field.initial)
        data[name] = "" if value is None else getattr(value, "pk", value)
    data.update({"fills-TOTAL_FORMS": 1, "fills-INITIAL_FORMS": 0, "fills-MIN_NUM_FORMS": 0,
                 "fills-MAX_NUM_FORMS": 1000, "fills-0-fill_date": str(timezone.localdate()),
                 "fills-0-quantity": "30", "fills-0-days_supply": 30, "fills-0-pharmacy": rx.pharmacy.pk,
                 "fills-0-status": "dispensed", "fills-0-prescription": rx.pk})
    data = {k: v for k, v in data.items() if not isinstance(v, (list, tuple))}
    response = superuser_client.post(url, data)
    assert response.status_code == 302, (response.context["adminform"].form.errors,
                                         [f.errors for f in response.context["inline_admin_formsets"][0].formset])
    fill = Fill.objects.get(prescription=rx)
    assert fill.history.get().history_user == superuser_client.user
    _one_share_by(superuser_client.user, fill)
    # Editing the same fill in the inline saves it with history and shares nothing again.
    data.update({"fills-INITIAL_FORMS": 1, "fills-0-id": fill.pk, "fills-0-days_supply": 28})
    response = superuser_client.post(url, data)
    assert response.status_code == 302
    fill.refresh_from_db()
    assert fill.days_supply == 28 and "Edited in admin (days_supply)" in fill.history.latest().history_change_reason
    assert OutboxMessage.objects.filter(kind=DISPENSE).count() == 1
