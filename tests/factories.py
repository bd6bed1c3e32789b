"""factory_boy factories for the core domain; valid identifiers by construction."""
from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from pharmacy import models
from pharmacy.validators import luhn_checksum_ok

_rng = random.Random(7)


def valid_npi(seq: int) -> str:
    base = f"1{seq:08d}"
    return next(base + c for c in "0123456789" if luhn_checksum_ok("80840" + base + c))


def valid_dea(seq: int, last_name: str = "Smith", first: str = "B") -> str:
    d = [int(c) for c in f"{seq:06d}"[-6:]]
    check = ((d[0] + d[2] + d[4]) + 2 * (d[1] + d[3] + d[5])) % 10
    return f"{first}{last_name[0].upper()}{''.join(map(str, d))}{check}"


class FacilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Facility
        django_get_or_create = ("code",)

    code = "MAIN"
    name = "Riverside Family Medicine"
    phone = "617-555-0190"
    address_line1 = "200 River St"
    city = "Boston"
    state = "MA"
    postal_code = "02114"


class PharmacyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Pharmacy

    ncpdp_id = factory.Sequence(lambda n: f"{1000000 + n:07d}")
    npi = factory.Sequence(lambda n: valid_npi(500000 + n))
    name = factory.Sequence(lambda n: f"Pharmacy {n}")
    phone = "617-555-0111"
    address_line1 = factory.Sequence(lambda n: f"{n + 1} Main St")
    city = "Boston"
    state = "MA"
    postal_code = "02108"


class PrescriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prescriber

    first_name = "Susan"
    last_name = "Smith"
    credentials = "MD"
    npi = factory.Sequence(lambda n: valid_npi(n + 1))
    dea_number = factory.Sequence(lambda n: valid_dea(n + 1))
    email = factory.Sequence(lambda n: f"dr{n}@clinic.example.com")
    practice = factory.SubFactory(FacilityFactory)


class VeterinarianFactory(PrescriberFactory):
    first_name = "Hannah"
    last_name = "Whitfield"
    credentials = "DVM"
    is_veterinarian = True
    npi = None
    state_license_number = factory.Sequence(lambda n: f"VT-{n:05d}")
    dea_number = factory.Sequence(lambda n: valid_dea(n + 1, "Whitfield", "A"))
    practice = factory.SubFactory(FacilityFactory, code="VET", name="Oakwood Veterinary Clinic", kind="veterinary")


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Patient

    facility = factory.SubFactory(FacilityFactory)
    mrn = factory.Sequence(lambda n: f"M{n:06d}")
    first_name = "John"
    last_name = factory.Sequence(lambda n: f"Doe{n}")
    birth_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=365 * 60))
    sex = "M"
    phone = factory.Sequence(lambda n: f"617-555-{n % 10000:04d}")
    address_line1 = factory.Sequence(lambda n: f"{n + 10} Beacon St")
    city = "Boston"
    state = "MA"
    postal_code = "02116"
    email = factory.Sequence(lambda n: f"patient{n}@example.com")
    contact_preference = "sms"
    consent_to_messages = True
    preferred_pharmacy = factory.SubFactory(PharmacyFactory)
    last_visit_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=90))


class AnimalFactory(PatientFactory):
    facility = factory.SubFactory(FacilityFactory, code="VET", name="Oakwood Veterinary Clinic", kind="veterinary")
    first_name = "Biscuit"
    species = "dog"
    breed = "Beagle"
    weight_kg = Decimal("12.5")
    owner_first_name = "Rita"
    owner_last_name = "Moreno"


class DrugFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Drug

    name = factory.Sequence(lambda n: f"lisinopril{n}" if n else "lisinopril")
    strength = "10 mg"
    dose_form = "tablet"
    route = "oral"
    therapeutic_class = "ace_inhibitor"
    is_maintenance = True
    dea_schedule = "none"


class PrescriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prescription

    patient = factory.SubFactory(PatientFactory)
    prescriber = factory.SubFactory(PrescriberFactory)
    drug = factory.SubFactory(DrugFactory)
    sig = "Take 1 tablet by mouth once daily"
    quantity = Decimal("30")
    days_supply = 30
    refills_authorized = 5
    refills_remaining = 5
    written_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=60))
    pharmacy = factory.SelfAttribute("patient.preferred_pharmacy")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Through the core service, as in production (history, allergy flags)."""
        from pharmacy.actors import system_actor
        from pharmacy.services import prescription_create

        return prescription_create(prescription=model_class(*args, **kwargs),
                                   actor=system_actor("system:maintenance"), reason="Test data")


class FillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Fill

    prescription = factory.SubFactory(PrescriptionFactory)
    fill_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=25))
    quantity = Decimal("30")
    days_supply = 30
    pharmacy = factory.SelfAttribute("prescription.pharmacy")

    @classmethod
    def _create(cls, model_class, *args, actor=None, reason="Test data", **kwargs):
        """Through the core service, as in production (history, the apps' fill hooks); ``actor``
        defaults to a system actor (whose fills are not shared with an EHR)."""
        from pharmacy.actors import system_actor
        from pharmacy.services import fill_record

        return fill_record(fill=model_class(*args, **kwargs), actor=actor or system_actor("system:maintenance"),
                           reason=reason)


class AllergyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Allergy

    patient = factory.SubFactory(PatientFactory)
    substance = "Penicillin"
    drug_class = "penicillin"
    reaction = "Hives"
    severity = "moderate"


class LabResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LabResult

    patient = factory.SubFactory(PatientFactory)
    loinc_code = "2823-3"
    name = "Potassium"
    value = "4.2"
    unit = "mmol/L"
    abnormal_flag = "N"
    collected_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))


class CoverageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Coverage

    patient = factory.SubFactory(PatientFactory)
    payer_name = "Blue Harbor Health"
    bin = "610014"
    pcn = "MEDDPRIME"
    group = "G1234"
    member_id = factory.Sequence(lambda n: f"W{n:09d}")


class AgreementFactory(factory.django.DjangoModelFactory):
    """A collaborative practice agreement (admin-managed in the product); pass ``pharmacists=[user]``."""

    class Meta:
        model = models.CollaborativePracticeAgreement
        skip_postgeneration_save = True

    title = "Statin renewals"
    prescriber = factory.SubFactory(PrescriberFactory)
    drug_classes = factory.LazyFunction(lambda: ["statin"])
    drug_names = factory.LazyFunction(list)
    max_days_supply = 365
    effective_date = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=30))
    document_reference = "CPA-TEST-001 (signed PDF in the practice's records)"

    @factory.post_generation
    def pharmacists(self, create, extracted, **kwargs):
        if create and extracted:
            self.pharmacists.add(*extracted)
