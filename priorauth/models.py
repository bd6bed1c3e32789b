"""Prior authorization: payers and their criteria (admin-configured), claim rejections as
received, PA cases with evidence, criteria result and drafts, submissions, payer responses,
attachments, and the prescription's PA status. Every model keeps its history.

Payer endpoints and credentials are NOT stored here: ``Payer.endpoint_key`` names an entry of
settings.RXHUB["PAYERS"] / env RXHUB_PAYERS (see priorauth/conf.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from pharmacy.models import Coverage, Drug, Patient, Prescription
from pharmacy.validators import validate_bin

from .choices import (
    OPEN_STATUSES,
    Adapter,
    AutoReview,
    Benefit,
    CaseStatus,
    Decision,
    ResponseSource,
    RolloutMode,
    SubmissionKind,
    Trigger,
)


class Payer(models.Model):
    """A plan as claims identify it (BIN, optionally PCN) with its PA channel and deadlines."""

    name = models.CharField(max_length=200)
    bin = models.CharField("BIN", max_length=6, validators=[validate_bin], db_index=True)
    pcn = models.CharField("PCN", max_length=20, blank=True, help_text="Empty = any PCN under this BIN.")
    endpoint_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="Key in settings RXHUB['PAYERS'] / env RXHUB_PAYERS holding URLs and the token variable. "
        "Empty = write submissions to the file outbox.",
    )
    # Decision deadlines; empty = defaults from STANDARDS.md (priorauth/deadlines.py).
    expedited_hours = models.PositiveIntegerField(null=True, blank=True)
    standard_hours = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Which API accounts (integrator role) speak for this payer: they see and answer only this
    # payer's PA cases (issue 14 item 3). Bound from the payer's side like Pharmacy.integrator_users;
    # the binding's history is kept on the payer's history rows.
    integrator_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name="integrator accounts",
        help_text="API accounts (integrator role) of this payer: they see and answer only its PA cases.",
    )
    history = HistoricalRecords(m2m_fields=[integrator_users])

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["bin", "pcn"], name="pa_payer_bin_pcn_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.bin}{'/' + self.pcn if self.pcn else ''})"


class PayerCriteria(models.Model):
    """What a payer requires for a drug (by generic name) or a therapeutic class, and how far
    automation may go for that pair (rollout mode)."""

    payer = models.ForeignKey(Payer, on_delete=models.CASCADE, related_name="criteria")
    drug_name = models.CharField(
        max_length=200, blank=True, help_text="Generic name; empty = the whole class."
    )
    therapeutic_class = models.CharField(max_length=64, blank=True)
    benefit = models.CharField(max_length=8, choices=Benefit, default=Benefit.PHARMACY)
    diagnosis_prefixes = models.JSONField(
        default=list, blank=True, help_text='ICD-10-CM prefixes, e.g. ["E11"].'
    )
    step_therapy = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"label": "metformin", "drugs": ["metformin"], "classes": [], "min_days": 90}] '
        "— each step must be met.",
    )
    max_quantity = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    quantity_period_days = models.PositiveIntegerField(null=True, blank=True)
    required_labs = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"name": "HbA1c", "loinc_codes": ["4548-4"], "max_age_days": 90}]',
    )
    expedited_diagnosis_prefixes = models.JSONField(
        default=list, blank=True, help_text="Diagnoses that make a request expedited."
    )
    rollout_mode = models.CharField(max_length=8, choices=RolloutMode, default=RolloutMode.SHADOW)
    source = models.TextField(blank=True, help_text="Where the criteria come from (payer policy, date).")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["payer__name", "drug_name", "therapeutic_class"]
        verbose_name_plural = "payer criteria"
        constraints = [
            models.CheckConstraint(
                condition=~Q(drug_name="") | ~Q(therapeutic_class=""),
                name="pa_criteria_drug_or_class",
                violation_error_message="Criteria need a drug name or a therapeutic class.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payer.name}: {self.drug_name or self.therapeutic_class}"

    def clean(self) -> None:
        from .criteria import spec_errors

        errors = spec_errors(self.as_spec_dict())
        if not self.drug_name and not self.therapeutic_class:
            errors["drug_name"] = "A drug name or a therapeutic class is required."
        if self.therapeutic_class:
            from pharmacy.drug_classes import THERAPEUTIC_CLASSES

            if self.therapeutic_class not in THERAPEUTIC_CLASSES:
                errors["therapeutic_class"] = f"Unknown therapeutic class {self.therapeutic_class!r}."
        if (self.max_quantity is None) != (self.quantity_period_days is None):
            errors["quantity_period_days"] = "A quantity limit needs both a maximum and a period."
        if errors:
            raise ValidationError(errors)

    def as_spec_dict(self) -> dict:
        return {
            "diagnosis_prefixes": self.diagnosis_prefixes,
            "step_therapy": self.step_therapy,
            "max_quantity": self.max_quantity,
            "quantity_period_days": self.quantity_period_days,
            "required_labs": self.required_labs,
            "expedited_diagnosis_prefixes": self.expedited_diagnosis_prefixes,
        }


class ClaimRejection(models.Model):
    """A rejected pharmacy claim as the integrator delivered it (stored first; one row per
    claim reference — repeated deliveries count up ``deliveries``)."""

    claim_reference = models.CharField(max_length=64, unique=True)
    prescription = models.ForeignKey(
        Prescription, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="claim_rejections")
    drug = models.ForeignKey(Drug, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    ndc = models.CharField(max_length=11)
    bin = models.CharField("BIN", max_length=6)
    pcn = models.CharField("PCN", max_length=20, blank=True)
    group = models.CharField(max_length=32, blank=True)
    reject_codes = models.JSONField(default=list)
    reasons = models.JSONField(default=list, help_text="Each code with its meaning and what was done.")
    rejected_at = models.DateTimeField()
    deliveries = models.PositiveIntegerField(default=1)
    case = models.ForeignKey(
        "PACase", null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"Claim {self.claim_reference} rejected {', '.join(self.reject_codes)}"


class PACase(models.Model):
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="pa_cases")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pa_cases")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="+")
    coverage = models.ForeignKey(Coverage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payer = models.ForeignKey(Payer, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    criteria = models.ForeignKey(
        PayerCriteria, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=10, choices=Trigger, default=Trigger.STAFF)
    claim_reference = models.CharField(max_length=64, blank=True, db_index=True)
    renewal_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals"
    )
    status = models.CharField(max_length=20, choices=CaseStatus, default=CaseStatus.OPENED, db_index=True)
    benefit = models.CharField(max_length=8, choices=Benefit, default=Benefit.PHARMACY)
    adapter = models.CharField(max_length=4, choices=Adapter, default=Adapter.EPA)
    rollout_mode = models.CharField(max_length=8, choices=RolloutMode, default=RolloutMode.ASSIST)
    is_expedited = models.BooleanField(default=False)
    # Gathered and computed (JSON, as evaluated at the time).
    evidence = models.JSONField(default=list, blank=True)
    criteria_result = models.JSONField(default=dict, blank=True)
    # The system's draft (kept even when hidden in shadow mode) and the working copy people edit.
    system_letter = models.TextField(blank=True)
    system_fields = models.JSONField(default=dict, blank=True)
    system_statements = models.JSONField(default=list, blank=True)
    drafter = models.CharField(max_length=64, blank=True)
    letter = models.TextField(blank=True)
    fields = models.JSONField(default=dict, blank=True)
    missing = models.JSONField(default=list, blank=True)
    agreement = models.JSONField(
        default=dict, blank=True, help_text="How far the system's draft agreed with what was submitted."
    )
    # Submission and the payer's answer.
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_automatically = models.BooleanField(default=False, db_index=True)
    auto_trace = models.JSONField(default=list, blank=True)
    auto_review = models.CharField(max_length=5, choices=AutoReview, default=AutoReview.PENDING, blank=True)
    payer_case_id = models.CharField(max_length=64, blank=True, db_index=True)
    decision_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    authorization_number = models.CharField(max_length=64, blank=True)
    effective_date = models.DateField(null=True, blank=True)
    expiration_date = models.DateField(null=True, blank=True, db_index=True)
    denial_reasons = models.JSONField(default=list, blank=True)
    questions = models.JSONField(default=list, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    appeal_letter = models.TextField(blank=True)
    # Pharmacist queue notice (set by status changes, cleared when someone has seen it).
    attention = models.CharField(max_length=200, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = [models.F("decision_due_at").asc(nulls_last=True), "created_at", "id"]
        indexes = [
            models.Index(fields=["status", "decision_due_at", "created_at"]),
            # The queue's filter + order (open cases by payer deadline): pages read it in order.
            models.Index(fields=["decision_due_at", "created_at", "id"], name="pa_queue_open_idx",
                         condition=Q(status__in=list(OPEN_STATUSES))),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["prescription"],
                condition=Q(status__in=list(OPEN_STATUSES)),
                name="pa_one_open_case_per_prescription",
                violation_error_message="This prescription already has an open PA case.",
            ),
        ]
        permissions = [("submit_pacase", "Can approve a PA case for submission (clinical decision)")]

    def __str__(self) -> str:
        return f"PA case {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def draft_visible(self) -> bool:
        """Shadow mode keeps the draft from people; off makes none."""
        return self.rollout_mode in (RolloutMode.ASSIST, RolloutMode.AUTO)


class PASubmission(models.Model):
    case = models.ForeignKey(PACase, on_delete=models.CASCADE, related_name="submissions")
    kind = models.CharField(max_length=12, choices=SubmissionKind)
    adapter = models.CharField(max_length=4, choices=Adapter)
    message_id = models.CharField(max_length=64, db_index=True)
    outbox = models.ForeignKey(
        "pharmacy.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.message_id}"


class PAResponse(models.Model):
    """A payer answer as received, kept whole even when malformed (then flagged, case unchanged)."""

    case = models.ForeignKey(
        PACase, null=True, blank=True, on_delete=models.CASCADE, related_name="responses"
    )
    source = models.CharField(max_length=8, choices=ResponseSource)
    raw = models.TextField()
    decision = models.CharField(max_length=8, choices=Decision, blank=True)
    authorization_number = models.CharField(max_length=64, blank=True)
    effective_date = models.DateField(null=True, blank=True)
    expiration_date = models.DateField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    questions = models.JSONField(default=list, blank=True)
    is_malformed = models.BooleanField(default=False, db_index=True)
    errors = models.JSONField(default=dict, blank=True)
    applied = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Response {self.pk}: {self.decision or 'malformed'}"


class PAAttachment(models.Model):
    case = models.ForeignKey(PACase, on_delete=models.CASCADE, related_name="attachments")
    file_name = models.CharField(max_length=200)
    mime_type = models.CharField(max_length=100)
    data = models.BinaryField()
    size = models.PositiveIntegerField()
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["data"])

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.file_name


class PrescriptionAuthorization(models.Model):
    """The prescription's PA status, kept current by every case change."""

    prescription = models.OneToOneField(Prescription, on_delete=models.CASCADE, related_name="pa_status")
    case = models.ForeignKey(PACase, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=CaseStatus)
    authorization_number = models.CharField(max_length=64, blank=True)
    effective_date = models.DateField(null=True, blank=True)
    expiration_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"PA {self.status} for {self.prescription_id}"
