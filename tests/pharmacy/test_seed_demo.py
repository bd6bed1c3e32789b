"""The demo data set is realistic and valid: every seeded row passes the same validation as input."""
import io

import pytest
from django.core.management import call_command

from pharmacy import models

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_valid_data_for_every_role():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "password for all" in text and "integrator API token" in text
    assert models.Patient.objects.filter(species="human").count() >= 200
    animals = models.Patient.objects.exclude(species="human")
    assert animals.count() >= 20 and all(a.owner_last_name for a in animals)
    # An owner with two pets (same phone) exists, so intake must ask which animal.
    phones = list(animals.values_list("phone", flat=True))
    assert any(phones.count(p) > 1 for p in phones)
    assert models.Drug.objects.count() >= 150
    statuses = set(models.Prescription.objects.values_list("status", flat=True))
    assert {"active", "expired"} <= statuses
    assert models.Prescription.objects.exclude(dea_schedule="none").exists()
    for model in (models.Prescription, models.Patient, models.Prescriber, models.Pharmacy, models.Diagnosis,
                  models.LabResult, models.Coverage, models.Allergy):
        for row in model.objects.all()[:400]:
            row.full_clean(validate_unique=False)
    assert models.Prescription.history.filter(history_user__username="system:demo-seed").exists()
    # Every app's demo rows say who wrote them (a user or system actor) and why.
    from simple_history.models import registered_models

    for model in registered_models.values():
        history = model.history.all() if hasattr(model, "history") else None
        if history is not None:
            anonymous = history.filter(history_user__isnull=True)
            assert not anonymous.exists(), f"{model.__name__} history rows without an actor"
            assert not history.filter(history_change_reason__in=["", None]).exists(), (
                f"{model.__name__} without a reason"
            )
    assert "Refills:" in text  # the apps' demo modules ran
    # Deterministic: the second run is refused rather than duplicating.
    with pytest.raises(Exception, match="already present"):
        call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", "--if-empty", stdout=io.StringIO())
