"""Audit trail models: hash-chained security events (tamper-evident)."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """A security-relevant event. ``hash`` = HMAC-SHA256 (key ``RXHUB_AUDIT_KEY``, kept outside the
    database) over the canonical serialisation of this event including ``prev_hash`` (its
    predecessor's hash), so editing, deleting or reordering any event breaks every later link, and
    re-hashing an edit needs the key (``manage.py verify_audit``)."""

    sequence = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=64, db_index=True, help_text="e.g. login.success, refill.approved")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    actor_label = models.CharField(max_length=150, help_text="Username or system actor at the time.")
    subject_type = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=64, blank=True, db_index=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.kind} by {self.actor_label}"


class AuditChainHead(models.Model):
    """Where the chain ended after each append: one row per event, append-only like the events
    (the PostgreSQL trigger refuses UPDATE and DELETE), so deleting the last events also means
    deleting head rows. The newest row is the head ``verify_audit`` compares the chain with."""

    sequence = models.PositiveBigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"chain head #{self.sequence}"


class PhiAccess(models.Model):
    """One patient's data shown to one user by one request (HIPAA 45 CFR 164.312(b) audit
    controls: record and examine activity in systems that contain ePHI).

    Append-only like the audit chain: written once by ``audit.middleware.PhiAccessMiddleware``
    (one INSERT per request), never changed; PostgreSQL triggers refuse UPDATE/DELETE. It is a
    log, not a record with a lifecycle, so it deliberately has no HistoricalRecords."""

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    username = models.CharField(max_length=150,
                                help_text="Username at the time (kept if the user is renamed).")
    patient_id = models.BigIntegerField(db_index=True)
    what = models.CharField(max_length=200)
    path = models.CharField(max_length=300)
    method = models.CharField(max_length=8)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "PHI access"
        verbose_name_plural = "PHI access log"
        indexes = [models.Index(fields=["patient_id", "-at"]), models.Index(fields=["user", "-at"])]

    def __str__(self) -> str:
        return f"{self.username} viewed patient {self.patient_id} ({self.what})"
