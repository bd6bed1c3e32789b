"""Refill and renewal requests, the protocol rules that may decide them, signed prescriber
links, and free-text requests from patients and pet owners."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from pharmacy.models import InboundRecord, Patient, Pharmacy, Prescriber, Prescription

from .choices import (
    OPEN_STATUSES,
    InboundStatus,
    IntakeChannel,
    IntakeStatus,
    LinkStatus,
    ProtocolMode,
    RefillStatus,
    RequestKind,
    RequestSource,
)


class ProtocolRule(models.Model):
    """An auto-approval rule set in admin (refills/protocol.py evaluates it; defaults in
    refills/protocol_defaults.py with their sources)."""

    name = models.CharField(max_length=120, unique=True)
    mode = models.CharField(max_length=8, choices=ProtocolMode, default=ProtocolMode.SHADOW)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first; the first match applies.")
    species = models.CharField(max_length=16, default="human", help_text="human, veterinary or any")
    therapeutic_classes = models.JSONField(default=list, blank=True)
    drug_names = models.JSONField(default=list, blank=True, help_text="Generic names; empty = any in the classes.")
    require_maintenance = models.BooleanField(default=True)
    allow_controlled = models.BooleanField(default=False)
    allow_high_alert = models.BooleanField(default=False)
    max_months_since_visit = models.PositiveSmallIntegerField(default=12)
    required_labs = models.JSONField(
        default=list, blank=True, help_text='[{"name": "Potassium", "loinc_codes": ["2823-3"], "max_age_months": 12}]'
    )
    check_allergy_conflict = models.BooleanField(default=True)
    check_too_soon = models.BooleanField(default=True)
    min_therapy_months = models.PositiveSmallIntegerField(default=6)
    bridge_days = models.PositiveSmallIntegerField(default=30)
    # A renewal (a new prescription) may be authorized by a rule only under a collaborative practice
    # agreement it names (pharmacy/rules/authority.py); never for Schedule II–V.
    agreement = models.ForeignKey("pharmacy.CollaborativePracticeAgreement", null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  help_text="The collaborative practice agreement under which this rule may "
                                            "authorize renewals (none: refills only).")
    source = models.TextField(blank=True, help_text="Citation for the rule.")
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.mode})"


class RefillRequest(models.Model):
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="refill_requests")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="refill_requests")
    kind = models.CharField(max_length=8, choices=RequestKind, default=RequestKind.REFILL)
    source = models.CharField(max_length=12, choices=RequestSource, default=RequestSource.STAFF)
    # Indexed by Meta.indexes (status first) and the queue's partial index, not one per column.
    status = models.CharField(max_length=32, choices=RefillStatus, default=RefillStatus.RECEIVED)
    is_urgent = models.BooleanField(default=False)
    run_out_date = models.DateField(null=True, blank=True)
    pharmacy = models.ForeignKey(
        Pharmacy, null=True, blank=True, on_delete=models.PROTECT, related_name="refill_requests"
    )
    # Eligibility and protocol, stored as evaluated (list of {code, message, blocking, citation};
    # trace = list of {name, passed, detail, skipped}).
    eligibility = models.JSONField(default=list, blank=True)
    protocol_rule = models.ForeignKey(ProtocolRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    protocol_mode = models.CharField(max_length=8, blank=True)
    protocol_outcome = models.CharField(max_length=16, blank=True, help_text="approve | refer | not_applicable")
    protocol_suggestion = models.CharField(max_length=32, blank=True)
    protocol_trace = models.JSONField(default=list, blank=True)
    # Work on the request.
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    denial_reason_code = models.CharField(max_length=2, blank=True, help_text="NCPDP SCRIPT denial code (AA…DA).")
    denial_reason = models.TextField(blank=True)
    approved_quantity = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    approved_days_supply = models.PositiveIntegerField(null=True, blank=True)
    approved_refills = models.PositiveSmallIntegerField(null=True, blank=True)
    # What the decision changed ({"refills": {"from": 0, "to": 5}, …}), the agreement a pharmacist
    # (or a protocol rule) acted under, and the reason a pharmacist overrode a blocking finding.
    changes = models.JSONField(default=dict, blank=True)
    agreement = models.ForeignKey("pharmacy.CollaborativePracticeAgreement", null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="refill_requests")
    override_reason = models.TextField(blank=True)
    overridden_findings = models.JSONField(default=list, blank=True)
    # Prescriber, pharmacy and patient exchanges.
    prescriber = models.ForeignKey(Prescriber, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    forwarded_at = models.DateTimeField(null=True, blank=True)
    # The prescriber sends a new prescription from their own (EPCS-certified) system instead
    # (21 CFR 1311): when they said so, and the NewRx that replaced this request.
    new_prescription_requested_at = models.DateTimeField(null=True, blank=True, db_index=True)
    new_prescription = models.ForeignKey(Prescription, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="replaced_requests",
                                         help_text="The new prescription (NCPDP NewRx) that replaced this request.")
    pharmacy_message_id = models.CharField(max_length=35, blank=True,
                                           help_text="MessageID of the pharmacy's RxRenewalRequest.")
    pharmacy_requested_refills = models.PositiveSmallIntegerField(null=True, blank=True)
    outbound_message_id = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    fill_note = models.TextField(blank=True)
    # Requests from patients and pet owners.
    intake = models.ForeignKey("IntakeMessage", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="requests")
    match_confidence = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    triage_summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # History rows are read per request (by ``id``) and purged by ``history_date``: no other index
    # (each one costs every write; detection writes a history row per request it opens).
    history = HistoricalRecords(no_db_index=[
        "status", "is_urgent", "run_out_date", "pharmacy_message_id", "outbound_message_id", "created_at",
        "new_prescription_requested_at", "new_prescription", "patient", "prescription", "pharmacy", "prescriber",
        "claimed_by", "decided_by", "intake", "protocol_rule",
    ])

    class Meta:
        ordering = ["-is_urgent", "run_out_date", "created_at"]
        indexes = [
            models.Index(fields=["status", "-is_urgent", "run_out_date", "created_at"]),
            # Equality look-ups only: plain b-trees, without the varchar_pattern_ops twins db_index adds.
            models.Index(fields=["pharmacy_message_id"], name="refill_pharmacy_message_idx"),
            models.Index(fields=["outbound_message_id"], name="refill_outbound_message_idx"),
            # The queue's filter + order (selectors.DEFAULT_QUEUE_STATUSES): pages read it in order.
            models.Index(fields=["-is_urgent", "run_out_date", "created_at", "id"], name="refill_queue_open_idx",
                         condition=Q(status__in=[RefillStatus.RECEIVED, RefillStatus.NEEDS_REVIEW,
                                                 RefillStatus.AWAITING_PRESCRIBER, RefillStatus.EXPIRED])),
        ]
        constraints = [
            # A second open request for the same prescription is refused (DESIGN.md).
            models.UniqueConstraint(
                fields=["prescription"], condition=Q(status__in=list(OPEN_STATUSES)),
                name="refill_one_open_request_per_prescription",
                violation_error_message="This prescription already has an open refill request.",
            ),
        ]
        permissions = [
            ("decide_refillrequest", "Can approve or deny a refill request (clinical decision)"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request {self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class PrescriberLink(models.Model):
    """A signed, single-use approval link: no PHI in it; only the token's SHA-256 is stored."""

    request = models.ForeignKey(RefillRequest, on_delete=models.CASCADE, related_name="links")
    prescriber = models.ForeignKey(Prescriber, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    # The token is HMAC(SECRET_KEY, token_salt): the outbox keeps a placeholder, and the e-mail, the
    # text and the reminder are rendered at delivery; without SECRET_KEY this row yields no token.
    token_salt = models.CharField(max_length=64, blank=True)
    channels = models.JSONField(default=list, blank=True, help_text="Where the link was sent (email, sms).")
    status = models.CharField(max_length=8, choices=LinkStatus, default=LinkStatus.ACTIVE, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_from_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Link for request {self.request_id} ({self.status})"


class IntakeMessage(models.Model):
    """Free text from a patient or pet owner (SMS, e-mail, portal), kept as received."""

    channel = models.CharField(max_length=8, choices=IntakeChannel)
    sender = models.CharField(max_length=200, help_text="Phone number or e-mail address as received.")
    text = models.TextField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=10, choices=IntakeStatus, default=IntakeStatus.TRIAGE, db_index=True)
    matched_patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    match_confidence = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    match_detail = models.JSONField(default=dict, blank=True, help_text="Candidates and why.")
    triage_reason = models.CharField(max_length=200, blank=True)
    handled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    handled_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, help_text="What staff did: assigned, or why it was dismissed.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"Intake {self.pk} via {self.channel} ({self.status})"


class InboundNcpdpMessage(InboundRecord):
    """An NCPDP SCRIPT message a pharmacy sent us, stored raw before it is parsed (DESIGN.md:
    store first, then process). A MessageID is processed once per sender: a resent message gets
    the first answer again (status duplicate) and changes nothing."""

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", help_text="The integrator account that posted it.")
    payload = models.TextField(blank=True, help_text="As received (decoded as UTF-8; cut if oversize).")
    size_bytes = models.PositiveIntegerField(default=0)
    payload_truncated = models.BooleanField(default=False)
    sender = models.CharField(max_length=64, blank=True, help_text="Header From as Qualifier:ID.")
    message_id = models.CharField(max_length=35, blank=True, db_index=True)
    relates_to_message_id = models.CharField(max_length=35, blank=True, db_index=True)
    transaction = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=InboundStatus, default=InboundStatus.RECEIVED, db_index=True)
    error_code = models.CharField(max_length=3, blank=True, help_text="NCPDP Error/Code we answered with.")
    error = models.TextField(blank=True)
    answer = models.TextField(blank=True, help_text="The NCPDP Status or Error message we answered with.")
    http_status = models.PositiveSmallIntegerField(default=200)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refill_request = models.ForeignKey(RefillRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="inbound_messages")
    answers_outbox = models.ForeignKey("pharmacy.OutboxMessage", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", help_text="Our message this one answers (e.g. a CancelRx).")
    result = models.CharField(max_length=200, blank=True, help_text="What processing did, in a line.")
    processed_at = models.DateTimeField(null=True, blank=True)
    # The raw payload can be megabytes: keep it once, not in every history row.
    history = HistoricalRecords(excluded_fields=["payload"])

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "inbound NCPDP message"
        constraints = [
            # One processed message per (sender, MessageID); a concurrent twin fails here and is
            # answered as a duplicate (refills/inbound.py).
            models.UniqueConstraint(fields=["sender", "message_id", "payload_sha256"], condition=Q(status="processed"),
                                    name="ncpdp_inbound_processed_once"),
        ]

    def __str__(self) -> str:
        return f"NCPDP {self.transaction or '?'} {self.message_id or self.pk} ({self.status})"


class NewRxPatientMatch(models.Model):
    """An inbound NewRx whose patient could not be matched with confidence (none or several on
    file): a person chooses the patient, then the prescription is created from the stored message
    (refills/new_rx.py ``new_rx_match_resolve``)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    inbound_message = models.OneToOneField(InboundNcpdpMessage, on_delete=models.CASCADE, related_name="patient_match")
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN, db_index=True)
    patient_data = models.JSONField(default=dict, help_text="The patient as the NewRx describes them.")
    candidates = models.JSONField(default=list, blank=True, help_text="[{patient_id, reasons}] on file.")
    resolved_patient = models.ForeignKey("pharmacy.Patient", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="+")
    prescription = models.ForeignKey("pharmacy.Prescription", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="The prescription created once matched.")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "NewRx patient match"

    def __str__(self) -> str:
        return f"NewRx patient match for inbound message {self.inbound_message_id} ({self.status})"
