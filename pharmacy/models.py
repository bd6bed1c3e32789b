"""Core pharmacy domain: who (patients, prescribers, pharmacies), what (drugs, prescriptions, fills)
and the clinical context refill protocols and PA criteria read (allergies, diagnoses, coverage,
lab results, encounters). Every model keeps its history (django-simple-history).
"""
from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from . import choices
from .rules import controlled
from .validators import (
    icd10cm_description,
    normalize_icd10cm,
    normalize_ndc,
    normalize_phone,
    validate_bin,
    validate_dea_number,
    validate_icd10cm,
    validate_loinc,
    validate_ncpdp_id,
    validate_ndc11,
    validate_npi,
    validate_rxcui,
)


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Facility(TimeStamped):
    """A practice or clinic whose patients the pharmacy serves; MRNs are unique within one."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=choices.FacilityKind, default=choices.FacilityKind.HUMAN)
    phone = models.CharField(max_length=32, blank=True)
    # The practice address: NCPDP SCRIPT 2017071 requires the prescriber's Address in NewRx and ePA
    # (MandatoryAddressType: line 1, city, state, postal code).
    address_line1 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "facilities"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Pharmacy(TimeStamped):
    ncpdp_id = models.CharField("NCPDP provider ID", max_length=7, unique=True, validators=[validate_ncpdp_id])
    npi = models.CharField("NPI", max_length=10, blank=True, validators=[validate_npi])
    name = models.CharField(max_length=200)
    address_line1 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # Where authorizations for this pharmacy go. Credentials are never stored here: the
    # endpoint names an environment variable holding the token (see messaging.transports).
    outbound_transport = models.CharField(
        max_length=8, choices=choices.OutboundTransport, default=choices.OutboundTransport.FILE
    )
    outbound_endpoint = models.URLField(blank=True, help_text="HTTP endpoint for NCPDP SCRIPT messages.")
    outbound_credentials_env = models.CharField(
        max_length=64, blank=True, help_text="Name of the environment variable holding the endpoint token."
    )
    is_active = models.BooleanField(default=True)
    # Which API accounts may post NCPDP SCRIPT (POST /api/v1/ncpdp/) as this pharmacy: an integrator
    # account speaks for the pharmacies bound here and no others (refills/inbound.py refuses the rest).
    # Bind from the pharmacy's side (admin, or stamp() then pharmacy.integrator_users.add(user)):
    # the history of the binding is kept on the pharmacy's history rows (m2m_fields below).
    integrator_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name="integrator accounts",
        help_text="API accounts (integrator role) allowed to send NCPDP SCRIPT messages as this pharmacy.",
    )
    history = HistoricalRecords(m2m_fields=[integrator_users])

    class Meta:
        verbose_name_plural = "pharmacies"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ncpdp_id})"

    def clean(self) -> None:
        if self.outbound_transport == choices.OutboundTransport.HTTP and not self.outbound_endpoint:
            raise ValidationError({"outbound_endpoint": "An HTTP transport needs an endpoint URL."})


class Prescriber(TimeStamped):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    credentials = models.CharField(max_length=32, blank=True, help_text="MD, DO, NP, PA, DVM …")
    is_veterinarian = models.BooleanField(default=False)
    # NPI is required for human medicine; veterinarians have none (CMS NPPES covers HIPAA
    # covered health care providers only) and carry a state license number instead.
    npi = models.CharField("NPI", max_length=10, unique=True, null=True, blank=True, validators=[validate_npi])
    state_license_number = models.CharField(max_length=32, blank=True)
    state_license_state = models.CharField(max_length=2, blank=True)
    dea_number = models.CharField("DEA number", max_length=9, blank=True, validators=[validate_dea_number])
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    practice = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="prescribers")
    link_preference = models.CharField(
        max_length=8,
        choices=[("email", "E-mail"), ("sms", "Text message"), ("both", "E-mail and text")],
        default="email",
        help_text="How signed approval links reach this prescriber.",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="prescriber"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_veterinarian=True) | Q(npi__isnull=False),
                name="prescriber_human_requires_npi",
                violation_error_message="An NPI is required for a prescriber in human medicine.",
            ),
        ]

    def __str__(self) -> str:
        suffix = f", {self.credentials}" if self.credentials else ""
        return f"{self.first_name} {self.last_name}{suffix}"

    @property
    def display_name(self) -> str:
        return str(self)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.npi == "":
            self.npi = None
        self.phone = normalize_phone(self.phone)
        if not self.is_veterinarian and not self.npi:
            errors["npi"] = "An NPI is required for a prescriber in human medicine."
        if self.is_veterinarian and not self.state_license_number:
            errors["state_license_number"] = "A veterinarian needs a state license number."
        if self.dea_number:
            self.dea_number = self.dea_number.upper()
            try:
                validate_dea_number(self.dea_number, last_name=self.last_name)
            except ValidationError as exc:
                errors["dea_number"] = exc.messages[0]
        if errors:
            raise ValidationError(errors)


class Patient(TimeStamped):
    """A person — or, in a veterinary practice, an animal whose owner is the contact."""

    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=64)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=1, choices=choices.Sex, default=choices.Sex.UNKNOWN)
    species = models.CharField(max_length=16, choices=choices.Species, default=choices.Species.HUMAN)
    breed = models.CharField(max_length=100, blank=True)
    weight_kg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    # For animals, the owner (client) receives messages; phone/e-mail below are the owner's.
    owner_first_name = models.CharField(max_length=100, blank=True)
    owner_last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True, db_index=True)
    email = models.EmailField(blank=True, db_index=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    preferred_pharmacy = models.ForeignKey(
        Pharmacy, null=True, blank=True, on_delete=models.SET_NULL, related_name="preferred_by"
    )
    contact_preference = models.CharField(
        max_length=8, choices=choices.ContactPreference, default=choices.ContactPreference.SMS
    )
    consent_to_messages = models.BooleanField(default=False)
    last_visit_date = models.DateField(null=True, blank=True)
    primary_prescriber = models.ForeignKey(
        Prescriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="primary_patients"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "mrn"],
                name="patient_mrn_unique_per_facility",
                violation_error_message="This MRN is already used by another patient of this facility.",
            ),
        ]
        indexes = [models.Index(fields=["last_name", "first_name", "birth_date"])]

    def __str__(self) -> str:
        return f"{self.last_name}, {self.first_name} ({self.mrn})"

    def get_absolute_url(self) -> str:
        return reverse("patient-detail", args=[self.pk])

    @property
    def is_animal(self) -> bool:
        return self.species != choices.Species.HUMAN

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def contact_name(self) -> str:
        """Whom messages address: the patient, or the owner of an animal."""
        if self.is_animal and self.owner_first_name:
            return self.owner_first_name
        return self.first_name

    def clean(self) -> None:
        errors = {}
        self.phone = normalize_phone(self.phone)
        if self.birth_date and self.birth_date > timezone.localdate():
            errors["birth_date"] = "Date of birth cannot be in the future."
        if self.is_animal and not (self.owner_first_name or self.owner_last_name):
            errors["owner_last_name"] = "An animal patient needs an owner (client) to contact."
        if self.contact_preference == choices.ContactPreference.EMAIL and self.consent_to_messages and not self.email:
            errors["email"] = "E-mail is the contact preference but no e-mail address is on file."
        if self.contact_preference == choices.ContactPreference.SMS and self.consent_to_messages and not self.phone:
            errors["phone"] = "Text messages are the contact preference but no phone number is on file."
        if errors:
            raise ValidationError(errors)


class Drug(TimeStamped):
    name = models.CharField(max_length=200, db_index=True, help_text="Generic name.")
    brand_names = models.JSONField(default=list, blank=True)
    strength = models.CharField(max_length=64, blank=True)
    dose_form = models.CharField(max_length=64, blank=True)
    route = models.CharField(max_length=32, blank=True)
    ndc = models.CharField(
        "NDC (11-digit)", max_length=11, unique=True, null=True, blank=True, validators=[validate_ndc11]
    )
    rxcui = models.CharField("RxNorm RxCUI", max_length=8, blank=True, db_index=True, validators=[validate_rxcui])
    dea_schedule = models.CharField(max_length=4, choices=choices.DeaSchedule, default=choices.DeaSchedule.NONE)
    therapeutic_class = models.CharField(max_length=64, blank=True, db_index=True)
    is_maintenance = models.BooleanField(default=False)
    is_high_alert = models.BooleanField(default=False, help_text="ISMP high-alert medication.")
    is_urgent = models.BooleanField(default=False, help_text="Running out is clinically urgent.")
    species = models.CharField(max_length=16, choices=choices.DrugSpecies, default=choices.DrugSpecies.HUMAN)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "strength"]

    def __str__(self) -> str:
        return " ".join(p for p in [self.name, self.strength, self.dose_form] if p)

    @property
    def is_controlled(self) -> bool:
        return self.dea_schedule != choices.DeaSchedule.NONE

    def clean(self) -> None:
        if self.ndc:
            try:
                self.ndc = normalize_ndc(self.ndc)
            except ValidationError as exc:
                raise ValidationError({"ndc": exc.messages}) from exc
        else:
            self.ndc = None
        if self.therapeutic_class:
            from .drug_classes import THERAPEUTIC_CLASSES

            if self.therapeutic_class not in THERAPEUTIC_CLASSES:
                raise ValidationError({"therapeutic_class": f"Unknown therapeutic class {self.therapeutic_class!r}."})


def default_expiration(written: date, schedule: str) -> date:
    """Expiry policy: Schedules III–IV end 6 months after issue (21 CFR 1306.22); others use
    the configured non-controlled default (365 days, state law varies)."""
    if schedule in controlled.SCHEDULES_III_IV:
        return controlled.refill_deadline(written)
    return written + timedelta(days=settings.RXHUB["NON_CONTROLLED_EXPIRY_DAYS"])


class Prescription(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    prescriber = models.ForeignKey(Prescriber, on_delete=models.PROTECT, related_name="prescriptions")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="prescriptions")
    rx_number = models.CharField("Rx number", max_length=32, blank=True, db_index=True)
    sig = models.TextField("Sig (directions)")
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    days_supply = models.PositiveIntegerField()
    refills_authorized = models.PositiveSmallIntegerField(default=0)
    refills_remaining = models.PositiveSmallIntegerField(default=0)
    written_date = models.DateField()
    expiration_date = models.DateField(null=True, blank=True)
    pharmacy = models.ForeignKey(
        Pharmacy, null=True, blank=True, on_delete=models.PROTECT, related_name="prescriptions"
    )
    status = models.CharField(
        max_length=16, choices=choices.PrescriptionStatus, default=choices.PrescriptionStatus.ACTIVE, db_index=True
    )
    indication_code = models.CharField("indication (ICD-10-CM)", max_length=10, blank=True)
    # The drug's schedule when written, copied so the database can enforce the refill limits.
    dea_schedule = models.CharField(
        max_length=4, choices=choices.DeaSchedule, default=choices.DeaSchedule.NONE, editable=False
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-written_date", "-id"]
        indexes = [models.Index(fields=["status", "patient"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(refills_remaining__lte=F("refills_authorized")),
                name="rx_refills_remaining_within_authorized",
                violation_error_message="Refills remaining cannot exceed refills authorized.",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="rx_quantity_positive",
                violation_error_message="Quantity must be greater than zero.",
            ),
            models.CheckConstraint(
                condition=Q(days_supply__gt=0),
                name="rx_days_supply_positive",
                violation_error_message="Days supply must be greater than zero.",
            ),
            # 21 CFR 1306.12(a): no refills of a Schedule II prescription.
            models.CheckConstraint(
                condition=~Q(dea_schedule=controlled.SCHEDULE_II) | Q(refills_authorized=0),
                name="rx_schedule_ii_no_refills",
                violation_error_message="A Schedule II prescription cannot have refills (21 CFR 1306.12).",
            ),
            # 21 CFR 1306.22(a): Schedules III and IV at most 5 refills (Schedule V is not limited).
            models.CheckConstraint(
                condition=~Q(dea_schedule__in=sorted(controlled.SCHEDULES_III_IV))
                | Q(refills_authorized__lte=controlled.MAX_REFILLS_III_IV),
                name="rx_schedule_iii_iv_max_five_refills",
                violation_error_message="Schedule III and IV prescriptions allow at most 5 refills (21 CFR 1306.22).",
            ),
            models.CheckConstraint(
                condition=Q(expiration_date__isnull=True) | Q(expiration_date__gte=F("written_date")),
                name="rx_expires_after_written",
                violation_error_message="The expiration date cannot be before the written date.",
            ),
        ]

    def __str__(self) -> str:
        return f"Rx {self.rx_number or self.pk}: {self.drug}"

    def save(self, *args, **kwargs):
        if self.drug_id and (self._state.adding or not self.dea_schedule):
            self.dea_schedule = Drug.objects.only("dea_schedule").get(pk=self.drug_id).dea_schedule
        if self.written_date and not self.expiration_date:
            self.expiration_date = default_expiration(self.written_date, self.dea_schedule)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.drug_id and self._state.adding:
            self.dea_schedule = self.drug.dea_schedule
        if self.written_date and self.written_date > timezone.localdate() + timedelta(days=1):
            errors["written_date"] = "The written date cannot be in the future."
        if self.indication_code:
            self.indication_code = normalize_icd10cm(self.indication_code)
            try:
                validate_icd10cm(self.indication_code)
            except ValidationError as exc:
                errors["indication_code"] = exc.messages[0]
        if self.patient_id and self.prescriber_id:
            animal = self.patient.is_animal
            if animal and not self.prescriber.is_veterinarian:
                errors["prescriber"] = "An animal patient's prescription must come from a veterinarian."
            if not animal and self.prescriber.is_veterinarian:
                errors["prescriber"] = "A veterinarian cannot prescribe for a human patient."
        if self.dea_schedule != choices.DeaSchedule.NONE and self.prescriber_id and not self.prescriber.dea_number:
            errors["prescriber"] = "A controlled substance needs a prescriber with a DEA number (21 CFR 1306.03)."
        if self.written_date and self.expiration_date and self.dea_schedule in controlled.SCHEDULES_III_IV:
            limit = default_expiration(self.written_date, self.dea_schedule)
            if self.expiration_date > limit:
                errors["expiration_date"] = (
                    "Schedule III/IV prescriptions cannot be refilled more than 6 months after issue (21 CFR 1306.22)."
                )
        if errors:
            raise ValidationError(errors)

    @property
    def is_controlled(self) -> bool:
        return self.dea_schedule != choices.DeaSchedule.NONE


class Fill(TimeStamped):
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="fills")
    fill_date = models.DateField(db_index=True)
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    days_supply = models.PositiveIntegerField()
    pharmacy = models.ForeignKey(Pharmacy, null=True, blank=True, on_delete=models.PROTECT, related_name="fills")
    status = models.CharField(max_length=24, choices=choices.FillStatus, default=choices.FillStatus.DISPENSED)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    external_reference = models.CharField(max_length=64, blank=True, help_text="Pharmacy's message or claim ID.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-fill_date", "-id"]
        indexes = [models.Index(fields=["prescription", "-fill_date"])]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive",
                                   violation_error_message="Quantity must be greater than zero."),
            models.CheckConstraint(condition=Q(days_supply__gt=0), name="fill_days_supply_positive",
                                   violation_error_message="Days supply must be greater than zero."),
        ]

    def __str__(self) -> str:
        return f"Fill {self.fill_date} of {self.prescription_id}"

    @property
    def last_covered_day(self) -> date:
        # STANDARDS: last covered day = fill date + days supply − 1.
        return self.fill_date + timedelta(days=self.days_supply - 1)


class Allergy(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="allergies")
    substance = models.CharField(max_length=200)
    rxcui = models.CharField(max_length=8, blank=True, validators=[validate_rxcui])
    drug_class = models.CharField(max_length=64, blank=True, help_text="Therapeutic class slug, e.g. penicillin.")
    reaction = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=16, choices=choices.AllergySeverity, default=choices.AllergySeverity.UNKNOWN)
    source = models.CharField(max_length=16, choices=choices.RecordSource, default=choices.RecordSource.PHARMACY)
    status = models.CharField(max_length=20, choices=choices.AllergyStatus, default=choices.AllergyStatus.ACTIVE)
    recorded_date = models.DateField(default=timezone.localdate)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "allergies"
        ordering = ["substance"]

    def __str__(self) -> str:
        return self.substance

    def clean(self) -> None:
        if self.drug_class:
            from .drug_classes import THERAPEUTIC_CLASSES

            if self.drug_class not in THERAPEUTIC_CLASSES:
                raise ValidationError({"drug_class": f"Unknown drug class {self.drug_class!r}."})


class AllergyFlag(models.Model):
    """A prescription whose drug conflicts with an active allergy (ingredient or cross-sensitive
    class, ``pharmacy/rules/allergy.py``), raised when the prescription is created; every queue
    showing the prescription shows the flag. (Moved from reconciliation, issue 12.)"""

    prescription = models.ForeignKey("Prescription", on_delete=models.CASCADE, related_name="allergy_flags")
    allergy = models.ForeignKey("Allergy", on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    cleared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    cleared_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["prescription", "allergy"], name="allergyflag_unique")]

    def __str__(self) -> str:
        return f"Allergy flag on Rx {self.prescription_id}: {self.reason}"


class Diagnosis(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="diagnoses")
    code = models.CharField("ICD-10-CM code", max_length=10, validators=[validate_icd10cm])
    description = models.CharField(max_length=255, blank=True)
    onset_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=choices.DiagnosisStatus, default=choices.DiagnosisStatus.ACTIVE)
    source = models.CharField(max_length=16, choices=choices.RecordSource, default=choices.RecordSource.PHARMACY)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "diagnoses"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"

    def clean(self) -> None:
        self.code = normalize_icd10cm(self.code)
        if not self.description:
            self.description = icd10cm_description(self.code)[:255]


class Coverage(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="coverages")
    payer_name = models.CharField(max_length=200)
    bin = models.CharField("BIN", max_length=6, validators=[validate_bin])
    pcn = models.CharField("PCN", max_length=20, blank=True)
    group = models.CharField(max_length=32, blank=True)
    member_id = models.CharField(max_length=64)
    priority = models.PositiveSmallIntegerField(default=1, help_text="1 primary, 2 secondary, …")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["priority"]

    def __str__(self) -> str:
        return f"{self.payer_name} ({self.bin})"


class LabResult(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="lab_results")
    loinc_code = models.CharField("LOINC code", max_length=10, validators=[validate_loinc], db_index=True)
    name = models.CharField(max_length=200)
    value = models.CharField(max_length=64)
    unit = models.CharField(max_length=32, blank=True)
    reference_range = models.CharField(max_length=64, blank=True)
    abnormal_flag = models.CharField(
        max_length=2, choices=choices.AbnormalFlag, default=choices.AbnormalFlag.NONE, blank=True
    )
    collected_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=choices.RecordSource, default=choices.RecordSource.EHR)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-collected_at"]
        indexes = [models.Index(fields=["patient", "loinc_code", "-collected_at"])]

    def __str__(self) -> str:
        return f"{self.name} {self.value} {self.unit}".strip()

    @property
    def is_abnormal(self) -> bool:
        return self.abnormal_flag not in ("", choices.AbnormalFlag.NORMAL)


class Encounter(TimeStamped):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="encounters")
    date = models.DateField()
    kind = models.CharField(max_length=16, choices=choices.EncounterKind, default=choices.EncounterKind.OFFICE_VISIT)
    prescriber = models.ForeignKey(
        Prescriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="encounters"
    )
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.SET_NULL, related_name="encounters")
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.date}"

    def clean(self) -> None:
        if self.date and self.date > timezone.localdate():
            raise ValidationError({"date": "An encounter date cannot be in the future."})


class CollaborativePracticeAgreement(TimeStamped):
    """A prescriber's signed agreement letting named pharmacists authorize renewals of certain drugs
    (docs/standards.md "Who may authorize what"; state law decides whether and how — 48 states and
    DC permit CPAs in some form, NASPA/NABP surveys). Recorded by an admin; none exist by default.
    Never covers Schedule II–V: this system is not EPCS-certified (21 CFR 1311)."""

    title = models.CharField(max_length=200)
    prescriber = models.ForeignKey(Prescriber, on_delete=models.PROTECT, related_name="practice_agreements")
    pharmacists = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                         help_text="Pharmacists who may act under the agreement.")
    pharmacist_groups = models.ManyToManyField("auth.Group", blank=True, related_name="+",
                                               help_text="…or every pharmacist in these groups.")
    drug_classes = models.JSONField(default=list, blank=True, help_text='Therapeutic class slugs, e.g. ["statin"].')
    drug_names = models.JSONField(default=list, blank=True, help_text='Generic names, e.g. ["atorvastatin"].')
    max_days_supply = models.PositiveIntegerField(
        default=365, help_text="Most days of supply one renewal may authorize (days supply × (refills + 1)).")
    effective_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    document_reference = models.CharField(max_length=200, help_text="Where the signed agreement is kept.")
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    history = HistoricalRecords(m2m_fields=[pharmacists, pharmacist_groups])

    class Meta:
        ordering = ["prescriber__last_name", "title"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__isnull=True) | Q(end_date__gte=F("effective_date")),
                                   name="cpa_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.prescriber})"

    def clean(self) -> None:
        from .drug_classes import THERAPEUTIC_CLASSES

        unknown = [c for c in self.drug_classes or [] if c not in THERAPEUTIC_CLASSES]
        if unknown:
            raise ValidationError({"drug_classes": f"Unknown therapeutic class(es): {', '.join(unknown)}."})
        if not (self.drug_classes or self.drug_names):
            raise ValidationError("Name the drug classes or drugs the agreement covers.")
        if self.end_date and self.end_date < self.effective_date:
            raise ValidationError({"end_date": "The agreement cannot end before it starts."})


class OutboxMessage(models.Model):
    """An outbound message written in the same transaction as the change that causes it, then
    delivered by a task with retries. ``message_id`` makes delivery idempotent at the receiver;
    ``dedupe_key`` makes enqueueing idempotent here (one authorization per approval)."""

    message_id = models.CharField(max_length=64, unique=True)
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    kind = models.CharField(max_length=64, db_index=True, help_text="e.g. ncpdp:RxRenewalResponse, sms:refill-approved")
    transport = models.CharField(max_length=8, choices=choices.Transport)
    destination = models.CharField(max_length=500, blank=True, help_text="URL, folder, host:port, e-mail or phone.")
    credentials_env = models.CharField(max_length=64, blank=True)
    content_type = models.CharField(max_length=100, default="application/xml")
    subject = models.CharField(max_length=200, blank=True, help_text="E-mail subject (no PHI).")
    payload = models.TextField()
    status = models.CharField(max_length=8, choices=choices.OutboxStatus, default=choices.OutboxStatus.PENDING,
                              db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    response = models.TextField(blank=True, help_text="What the receiver answered (e.g. NCPDP Status).")
    sent_at = models.DateTimeField(null=True, blank=True)
    related_model = models.CharField(max_length=64, blank=True)
    related_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id} ({self.status})"


class InboundRecord(models.Model):
    """What every stored inbound message carries for the core pipeline (pharmacy/inbound.py):
    the payload's SHA-256 (dedupe on sender + control ID + content), whether its control ID was
    already used by a message with other content, and the retry bookkeeping."""

    payload_sha256 = models.CharField(max_length=64, blank=True, db_index=True,
                                      help_text="SHA-256 of the payload bytes as received (up to the size limit).")
    control_id_reused = models.BooleanField(
        default=False, help_text="An earlier message from this sender had this control ID with other content.")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                           help_text="When a failed message is retried next (none: no more).")

    class Meta:
        abstract = True


class RefusedPayload(models.Model):
    """An API request body refused before any view read it — oversize, nested too deep, not
    Unicode, not JSON — kept with its error (DESIGN.md: every inbound payload is stored, refused
    ones included). Written by pharmacy.api.parsers.SafeJSONParser; read-only in admin."""

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    path = models.CharField(max_length=300)
    method = models.CharField(max_length=10)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    payload = models.TextField(blank=True, help_text="As received (decoded; cut at the size limit).")
    payload_truncated = models.BooleanField(default=False)
    payload_sha256 = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=32)
    error = models.TextField()
    history = HistoricalRecords(excluded_fields=["payload"])

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Refused {self.method} {self.path} ({self.error_code})"
