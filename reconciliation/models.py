"""Medication reconciliation: inbound EHR messages (stored raw first), EHR links, patient-match
items, reconciliation tasks and their discrepancies. Every model keeps its history."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from pharmacy.models import Allergy, InboundRecord, Patient, Prescription

from . import choices


class InboundMessage(InboundRecord):
    """One payload as received, before any parsing (DESIGN.md: store first, then process).

    Deduplicated by the core pipeline (pharmacy/inbound.py) on sender, control ID and payload
    SHA-256: a resend of a processed message is stored as a duplicate pointing at the original and
    never processed twice; the same control ID with other content is its own message, flagged
    ``control_id_reused``."""

    channel = models.CharField(max_length=16, choices=choices.Channel)
    format = models.CharField(max_length=8, choices=choices.PayloadFormat, default=choices.PayloadFormat.UNKNOWN)
    sender = models.CharField(max_length=200, blank=True, db_index=True,
                              help_text="MSH-3^MSH-4, Bundle meta.source, document custodian or remote address.")
    control_id = models.CharField(max_length=200, blank=True, help_text="MSH-10, Bundle.id or ClinicalDocument.id.")
    message_type = models.CharField(max_length=64, blank=True, db_index=True)
    payload = models.TextField(help_text="As received (decoded; cut at the size limit when oversize).")
    size_bytes = models.PositiveIntegerField(default=0)
    payload_truncated = models.BooleanField(default=False)
    content_type = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=choices.InboundStatus, default=choices.InboundStatus.RECEIVED,
                              db_index=True)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="duplicates")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="inbound_messages")
    summary = models.JSONField(default=dict, blank=True, help_text="What processing read and did.")
    source_name = models.CharField(max_length=255, blank=True, help_text="File name or remote peer.")
    # The raw payload can be megabytes: keep it once, not in every history row.
    history = HistoricalRecords(excluded_fields=["payload"])

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # Processed once: a concurrent twin fails here and becomes a duplicate (pharmacy/inbound.py).
            models.UniqueConstraint(
                fields=["sender", "control_id", "payload_sha256"], condition=~Q(control_id="") & Q(status="processed"),
                name="inbound_processed_once",
                violation_error_message="A message with this sender, control ID and content was already processed.",
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"{self.message_type or self.format} {self.control_id or self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("reconciliation:inbound-detail", args=[self.pk])

    @property
    def is_retryable(self) -> bool:
        return self.status in (choices.InboundStatus.FAILED, choices.InboundStatus.RECEIVED,
                               choices.InboundStatus.REJECTED)


class EhrLink(models.Model):
    """A patient's record in an EHR: who linked it, when, and whether exchange is consented."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="ehr_links")
    ehr_system = models.CharField(max_length=200, help_text="Assigning authority / sending facility, e.g. GENHOSP.")
    external_id = models.CharField(max_length=200, help_text="The patient's identifier in that EHR (e.g. MRN).")
    fhir_base_url = models.URLField(blank=True, help_text="FHIR R4 endpoint for pulling the record.")
    fhir_patient_id = models.CharField(max_length=200, blank=True)
    consent_to_exchange = models.BooleanField(default=False,
                                              help_text="Send dispenses and summaries back to this EHR.")
    outbound_transport = models.CharField(max_length=8, default="file",
                                          help_text="Outbox transport for FHIR messages (file or http).")
    outbound_endpoint = models.CharField(max_length=500, blank=True)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    linked_at = models.DateTimeField(default=timezone.now)
    match_outcome = models.CharField(max_length=16, choices=choices.MatchOutcome, default=choices.MatchOutcome.EXACT)
    match_score = models.DecimalField(max_digits=4, decimal_places=2, default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["ehr_system", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["ehr_system", "external_id"], name="ehrlink_unique_external_id",
                                    violation_error_message="This EHR identifier is already linked to a patient."),
        ]

    def __str__(self) -> str:
        return f"{self.ehr_system}:{self.external_id} → {self.patient_id}"


class PatientMatchItem(models.Model):
    """An inbound message whose patient could not be matched with confidence: a person decides."""

    inbound_message = models.OneToOneField(InboundMessage, on_delete=models.CASCADE, related_name="match_item")
    outcome = models.CharField(max_length=16, choices=choices.MatchOutcome)
    status = models.CharField(max_length=16, choices=choices.MatchItemStatus, default=choices.MatchItemStatus.OPEN,
                              db_index=True)
    patient_data = models.JSONField(default=dict, help_text="Patient as the message describes them.")
    candidates = models.JSONField(default=list, blank=True, help_text="[{patient_id, score, reasons}]")
    resolved_patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Match for message {self.inbound_message_id} ({self.outcome}, {self.status})"


class ReconciliationTask(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="reconciliation_tasks")
    inbound_message = models.ForeignKey(InboundMessage, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="tasks")
    kind = models.CharField(max_length=16, choices=choices.TaskKind, default=choices.TaskKind.UPDATE)
    status = models.CharField(max_length=16, choices=choices.TaskStatus, default=choices.TaskStatus.OPEN,
                              db_index=True)
    priority = models.CharField(max_length=8, choices=choices.Priority, default=choices.Priority.LOW)
    priority_rank = models.PositiveSmallIntegerField(default=2, help_text="0 high, 1 medium, 2 low (for ordering).")
    source_format = models.CharField(max_length=8, choices=choices.PayloadFormat, default=choices.PayloadFormat.UNKNOWN)
    ehr_system = models.CharField(max_length=200, blank=True)
    ehr_medications = models.JSONField(default=list, blank=True)
    ehr_allergies = models.JSONField(default=list, blank=True)
    no_known_allergies = models.BooleanField(default=False)
    pharmacy_medications = models.JSONField(default=list, blank=True)
    pharmacy_allergies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["priority_rank", "created_at", "id"]
        indexes = [
            models.Index(fields=["status", "priority_rank", "created_at"]),
            # The queue's filter + order (open tasks by priority, then age): pages read it in order.
            models.Index(fields=["priority_rank", "created_at", "id"], name="recon_queue_open_idx",
                         condition=Q(status__in=list(choices.OPEN_TASK_STATUSES))),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} reconciliation {self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("reconciliation:task-detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in choices.OPEN_TASK_STATUSES


class Discrepancy(models.Model):
    task = models.ForeignKey(ReconciliationTask, on_delete=models.CASCADE, related_name="discrepancies")
    kind = models.CharField(max_length=32, choices=choices.DiscrepancyKind)
    priority = models.CharField(max_length=8, choices=choices.Priority)
    status = models.CharField(max_length=16, choices=choices.DiscrepancyStatus,
                              default=choices.DiscrepancyStatus.PROPOSED, db_index=True)
    action = models.CharField(max_length=16, choices=choices.DiscrepancyAction, default=choices.DiscrepancyAction.NONE)
    summary = models.CharField(max_length=300)
    suggested_action = models.TextField(help_text="What to do, in plain words.")
    ehr_data = models.JSONField(default=dict, blank=True, help_text="The EHR side as received.")
    pharmacy_data = models.JSONField(default=dict, blank=True, help_text="The pharmacy side when compared.")
    prescription = models.ForeignKey(Prescription, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="discrepancies")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    applied = models.JSONField(default=dict, blank=True, help_text="What acceptance changed (model, id, field).")
    created_prescription = models.ForeignKey(Prescription, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="+")
    created_allergy = models.ForeignKey(Allergy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "discrepancies"
        ordering = ["task", "position", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"
