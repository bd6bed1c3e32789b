"""Signals never write domain rows (issue 12): the allergy flags of a new prescription are raised
by pharmacy.services.prescription_create, with the creating actor and a reason in their history."""
import pytest
from django.db.models.signals import post_save

from pharmacy.models import Allergy, AllergyFlag, Prescription
from tests.factories import DrugFactory, PatientFactory, PrescriberFactory

pytestmark = pytest.mark.django_db


def _receiver_modules(signal, sender) -> set[str]:
    live = signal._live_receivers(sender)
    receivers = [r for group in live for r in group] if isinstance(live, tuple) else list(live)
    return {getattr(r, "__module__", "") or type(r).__module__ for r in receivers}


def test_no_project_post_save_receiver_is_connected_to_prescription():
    """Only django-simple-history (the history row) and audit (the access/event log, not domain rows) listen.
    (Still open: reconciliation's Fill receiver that queues the EHR dispense share, issue 12.)"""
    for model in (Prescription,):
        project = {m for m in _receiver_modules(post_save, model)
                   if m.split(".")[0] in {"pharmacy", "refills", "priorauth", "reconciliation"}}
        assert project == set(), (model.__name__, project)


def test_api_prescription_raises_its_allergy_flag_with_the_api_user_and_a_reason(api_client_for):
    api = api_client_for("pharmacist")
    patient = PatientFactory()
    Allergy.objects.create(patient=patient, substance="Penicillin", drug_class="penicillin")
    drug = DrugFactory(name="amoxicillin", therapeutic_class="penicillin")
    response = api.post("/api/v1/prescriptions/", {
        "patient": patient.pk, "prescriber": PrescriberFactory().pk, "drug": drug.pk, "sig": "1 cap tid",
        "quantity": "30", "days_supply": 10, "refills_authorized": 0, "refills_remaining": 0,
        "written_date": "2026-11-20"}, format="json")
    assert response.status_code == 201, response.json()
    [flag] = AllergyFlag.objects.filter(prescription_id=response.json()["id"])
    [created] = flag.history.all()
    assert created.history_user == api.user
    assert "prescription created through the API" in created.history_change_reason
    rx_history = Prescription.objects.get(pk=response.json()["id"]).history.get()
    assert rx_history.history_user == api.user


def test_a_prescription_saved_outside_the_service_raises_no_flag():
    """The flag comes from the service call, not from saving the row."""
    from tests.factories import PrescriptionFactory

    patient = PatientFactory()
    Allergy.objects.create(patient=patient, substance="Penicillin", drug_class="penicillin")
    drug = DrugFactory(name="amoxicillin", therapeutic_class="penicillin")
    template = PrescriptionFactory.build(patient=patient, drug=drug, prescriber=PrescriberFactory())
    template.save()
    assert not template.allergy_flags.exists()
    from pharmacy.actors import system_actor
    from pharmacy.services import prescription_allergy_check

    [flag] = prescription_allergy_check(prescription=template, actor=system_actor("system:maintenance"),
                                        reason="re-check")
    assert flag.history.get().history_user.username == "system:maintenance"
    assert prescription_allergy_check(prescription=template, actor=system_actor("system:maintenance")) == []
