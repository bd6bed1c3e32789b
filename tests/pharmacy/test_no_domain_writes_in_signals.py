"""Signals never write domain rows (issue 12): the allergy flags of a new prescription are raised
by pharmacy.services.prescription_create, and the EHR dispense share of a new fill by
pharmacy.services.fill_record (the registry's fill_recorded hooks), with the creating actor and a
reason in their history."""
import pytest
from django.apps import apps
from django.db.models.signals import post_delete, post_save, pre_save

from pharmacy.models import Allergy, AllergyFlag, Fill, Prescription
from tests.factories import DrugFactory, PatientFactory, PrescriberFactory

pytestmark = pytest.mark.django_db


DOMAIN_APPS = ("pharmacy", "refills", "priorauth", "reconciliation")


def _receiver_modules(signal, sender) -> set[str]:
    live = signal._live_receivers(sender)
    receivers = [r for group in live for r in group] if isinstance(live, tuple) else list(live)
    return {getattr(r, "__module__", "") or type(r).__module__ for r in receivers}


def _domain_receivers() -> dict[str, set[str]]:
    """{model: project modules listening to its save/delete}, for every model of the domain apps.
    Only django-simple-history (history rows) and audit (the access/event log) may listen."""
    found = {}
    for label in DOMAIN_APPS:
        for model in apps.get_app_config(label).get_models():
            modules = {m for signal in (pre_save, post_save, post_delete) for m in _receiver_modules(signal, model)
                       if m.split(".")[0] in DOMAIN_APPS}
            if modules:
                found[model._meta.label] = modules
    return found


def test_no_project_receiver_listens_to_a_domain_model():
    """No pre_save/post_save/post_delete receiver of a domain app on any domain model: new
    prescriptions (allergy flags) and new fills (the EHR dispense share, the registry's
    ``fill_recorded`` hook) are recorded by core services with an actor and a reason."""
    assert _domain_receivers() == {}


def test_a_post_save_receiver_on_a_domain_model_is_caught():
    """The check above can fail: a receiver from a domain app connected to Fill is reported."""
    def share(sender, instance, created, **kwargs):  # what reconciliation/receivers.py used to do
        pass

    share.__module__ = "reconciliation.receivers"
    post_save.connect(share, sender=Fill, dispatch_uid="test-domain-receiver")
    try:
        assert _domain_receivers() == {"pharmacy.Fill": {"reconciliation.receivers"}}
    finally:
        post_save.disconnect(sender=Fill, dispatch_uid="test-domain-receiver")
    assert _domain_receivers() == {}


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
