"""Invariants: the database refuses what must never be stored; clean() names the field at fault."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from pharmacy.models import Prescription
from pharmacy.rules.supply import add_months
from tests.factories import (
    AnimalFactory,
    DrugFactory,
    PatientFactory,
    PrescriberFactory,
    PrescriptionFactory,
    VeterinarianFactory,
)

pytestmark = pytest.mark.django_db


def _write_past_validation(rx=None, **changes):
    """Change a stored prescription with a bare UPDATE (no clean()) so only the database can refuse."""
    rx = rx or PrescriptionFactory(refills_authorized=0, refills_remaining=0)
    with transaction.atomic():
        Prescription.objects.filter(pk=rx.pk).update(**changes)
    return rx


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"refills_authorized": 2, "refills_remaining": 3}, "rx_refills_remaining_within_authorized"),
        ({"quantity": Decimal("0")}, "rx_quantity_positive"),
        ({"days_supply": 0}, "rx_days_supply_positive"),
    ],
)
def test_database_refuses_broken_prescription(overrides, constraint):
    with pytest.raises(IntegrityError) as exc:
        _write_past_validation(**overrides)
    assert constraint in str(exc.value) or "CHECK constraint failed" in str(exc.value)


def test_database_refuses_refills_on_schedule_ii():
    drug = DrugFactory(name="oxycodone", dea_schedule="2", therapeutic_class="opioid_analgesic")
    rx = PrescriptionFactory(drug=drug, refills_authorized=0, refills_remaining=0)
    with pytest.raises(IntegrityError):
        _write_past_validation(rx, refills_authorized=1)


@pytest.mark.parametrize(("schedule", "refills", "allowed"), [("3", 5, True), ("4", 6, False), ("3", 6, False),
                                                              ("5", 11, True), ("none", 11, True)])
def test_database_limits_refills_by_schedule(schedule, refills, allowed):
    drug = DrugFactory(name=f"drug-c{schedule}", dea_schedule=schedule, therapeutic_class="other")
    rx = PrescriptionFactory(drug=drug, refills_authorized=0, refills_remaining=0)
    assert rx.dea_schedule == schedule
    if allowed:
        _write_past_validation(rx, refills_authorized=refills)
        rx.refresh_from_db()
        assert rx.refills_authorized == refills
    else:
        with pytest.raises(IntegrityError):
            _write_past_validation(rx, refills_authorized=refills)


def test_clean_names_the_field_for_schedule_ii_refills():
    drug = DrugFactory(name="methylphenidate", dea_schedule="2", therapeutic_class="stimulant_adhd")
    rx = PrescriptionFactory.build(drug=drug, refills_authorized=2, refills_remaining=2,
                                   patient=PatientFactory(), prescriber=PrescriberFactory())
    with pytest.raises(ValidationError) as exc:
        rx.full_clean()
    assert "21 CFR 1306.12" in str(exc.value)


def test_schedule_iii_iv_expire_six_months_after_issue_by_default():
    drug = DrugFactory(name="alprazolam", dea_schedule="4", therapeutic_class="benzodiazepine")
    rx = PrescriptionFactory(drug=drug, refills_authorized=2, refills_remaining=2, expiration_date=None)
    assert rx.expiration_date == add_months(rx.written_date, 6)


def test_non_controlled_expire_after_configured_days(settings):
    settings.RXHUB = {**settings.RXHUB, "NON_CONTROLLED_EXPIRY_DAYS": 180}
    rx = PrescriptionFactory(expiration_date=None)
    assert rx.expiration_date == rx.written_date + timedelta(days=180)


def test_human_prescriber_without_npi_refused_by_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        PrescriberFactory(npi=None)


def test_veterinarian_needs_license_not_npi():
    vet = VeterinarianFactory.build(state_license_number="")
    vet.practice.save()
    with pytest.raises(ValidationError) as exc:
        vet.full_clean()
    assert "state_license_number" in exc.value.message_dict
    vet.state_license_number = "VT-1"
    vet.full_clean()


def test_mrn_unique_per_facility_not_globally():
    first = PatientFactory(mrn="M1")
    PatientFactory(mrn="M1", facility__code="OTHER", facility__name="Other clinic")
    duplicate = PatientFactory.build(mrn="M1", facility=first.facility, preferred_pharmacy=None)
    with pytest.raises(ValidationError) as exc:
        duplicate.full_clean()
    assert "already used" in str(exc.value)


def test_animal_patient_needs_owner_and_a_veterinarian():
    animal = AnimalFactory.build(owner_first_name="", owner_last_name="", preferred_pharmacy=None)
    animal.facility.save()
    with pytest.raises(ValidationError) as exc:
        animal.full_clean()
    assert "owner_last_name" in exc.value.message_dict
    dog = AnimalFactory()
    rx = PrescriptionFactory.build(patient=dog, prescriber=PrescriberFactory(), drug=DrugFactory())
    with pytest.raises(ValidationError) as exc:
        rx.full_clean()
    assert "prescriber" in exc.value.message_dict
    rx.prescriber = VeterinarianFactory()
    rx.full_clean()


def test_future_birth_date_refused_with_field_name():
    patient = PatientFactory.build(birth_date=timezone.localdate() + timedelta(days=3), preferred_pharmacy=None)
    patient.facility.save()
    with pytest.raises(ValidationError) as exc:
        patient.full_clean()
    assert "birth_date" in exc.value.message_dict


def test_prescription_copies_schedule_from_drug():
    drug = DrugFactory(name="pregabalin", dea_schedule="5", therapeutic_class="antiepileptic")
    rx = PrescriptionFactory(drug=drug, refills_authorized=5, refills_remaining=5)
    assert Prescription.objects.get(pk=rx.pk).dea_schedule == "5"
