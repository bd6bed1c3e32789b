"""History rows always say who acted (a person or a named system actor) and why."""
from datetime import date

import pytest
from django.apps import apps

from pharmacy.actors import SystemActor, actor_user, bulk_create_recorded, save_with_history, system_actor
from pharmacy.models import Patient
from pharmacy.services import encounter_record
from tests.factories import FacilityFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_every_pharmacy_model_has_history():
    missing = [m.__name__ for m in apps.get_app_config("pharmacy").get_models()
               if not m.__name__.startswith("Historical") and not hasattr(m, "history")]
    assert missing == []


def test_system_actor_is_a_real_user_that_cannot_log_in():
    user = actor_user(system_actor("system:refill-protocol"))
    assert user.username == "system:refill-protocol"
    assert not user.is_active and not user.has_usable_password()
    assert actor_user(system_actor("system:refill-protocol")).pk == user.pk


def test_unknown_system_actor_refused():
    with pytest.raises(ValueError):
        SystemActor("system:nobody")


def test_save_with_history_records_actor_and_reason(pharmacist):
    patient = PatientFactory()
    patient.phone = "617-555-0000"
    save_with_history(patient, actor=pharmacist, reason="Patient called with a new number", update_fields=["phone"])
    latest = patient.history.latest()
    assert latest.history_user == pharmacist
    assert latest.history_change_reason == "Patient called with a new number"
    assert latest.history_type == "~"


def test_anonymous_actor_refused():
    with pytest.raises(ValueError):
        save_with_history(PatientFactory.build(), actor=None, reason="x")


def test_bulk_create_writes_history_for_each_row():
    facility = FacilityFactory()
    rows = [Patient(facility=facility, mrn=f"B{i}", first_name="A", last_name="B", birth_date="1980-01-01")
            for i in range(5)]
    bulk_create_recorded(Patient, rows, actor=system_actor("system:inbound"), reason="Imported from ADT")
    history = Patient.history.filter(mrn__startswith="B")
    assert history.count() == 5
    assert set(history.values_list("history_user__username", flat=True)) == {"system:inbound"}
    assert set(history.values_list("history_change_reason", flat=True)) == {"Imported from ADT"}


def test_encounter_moves_last_visit_forward_with_reason(pharmacist):
    patient = PatientFactory(last_visit_date=date(2025, 1, 1))
    encounter_record(actor=pharmacist, reason="Visit reported by the clinic", patient=patient, date=date(2026, 2, 3))
    patient.refresh_from_db()
    assert str(patient.last_visit_date) == "2026-02-03"
    assert patient.history.latest().history_change_reason.startswith("Last visit updated")
    encounter_record(actor=pharmacist, reason="Older visit", patient=patient, date=date(2025, 6, 1))
    patient.refresh_from_db()
    assert str(patient.last_visit_date) == "2026-02-03"


def test_admin_edit_records_reason(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    patient = PatientFactory()
    url = f"/admin/pharmacy/patient/{patient.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: (v if v is not None else "") for k, v in form.initial.items()}
    data.update({"first_name": "Renamed", "facility": patient.facility.pk, "birth_date": "1966-01-01",
                 "preferred_pharmacy": patient.preferred_pharmacy.pk, "primary_prescriber": "",
                 "allergies-TOTAL_FORMS": 0, "allergies-INITIAL_FORMS": 0, "coverages-TOTAL_FORMS": 0,
                 "coverages-INITIAL_FORMS": 0, "weight_kg": "", "last_visit_date": ""})
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    latest = patient.history.latest()
    assert latest.first_name == "Renamed"
    assert latest.history_user == admin_user and "Edited in admin" in latest.history_change_reason
