"""Refill request enumerations and the allowed-transition table (DESIGN.md: RefillRequest)."""
from django.db import models

from pharmacy import inbound as _core_inbound


class RequestKind(models.TextChoices):
    REFILL = "refill", "Refill"
    RENEWAL = "renewal", "Renewal (new authorization needed)"


class RequestSource(models.TextChoices):
    DETECTION = "detection", "Run-out detection"
    PATIENT = "patient", "Patient or owner message"
    PHARMACY = "pharmacy", "Pharmacy (NCPDP RxRenewalRequest)"
    API = "api", "API"
    STAFF = "staff", "Staff"


class RefillStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    AUTO_APPROVED = "auto_approved", "Approved by protocol"
    NEEDS_REVIEW = "needs_review", "Needs pharmacist review"
    AWAITING_PRESCRIBER = "awaiting_prescriber", "Awaiting prescriber"
    APPROVED = "approved", "Approved"
    APPROVED_WITH_CHANGES = "approved_with_changes", "Approved with changes"
    DENIED = "denied", "Denied"
    EXPIRED = "expired", "Expired (no prescriber answer)"
    # Schedule II–V (or the prescriber's choice): the prescriber sends a new prescription from their
    # EPCS-certified system (21 CFR 1311); this system never authorizes it.
    AWAITING_NEW_PRESCRIPTION = "awaiting_new_prescription", "Awaiting a new prescription from the prescriber"
    REPLACED_BY_NEW_PRESCRIPTION = "replaced_by_new_prescription", "Replaced by a new prescription"
    SENT_TO_PHARMACY = "sent_to_pharmacy", "Sent to pharmacy"
    FILLED = "filled", "Filled"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    NOT_DISPENSED = "not_dispensed", "Not dispensed"
    PICKED_UP = "picked_up", "Picked up"
    CANCELLED = "cancelled", "Cancelled"


S = RefillStatus
# Allowed transitions (DESIGN.md). Any open state may also become cancelled.
TRANSITIONS: dict[str, set[str]] = {
    S.RECEIVED: {S.AUTO_APPROVED, S.NEEDS_REVIEW},
    # approved_with_changes from the queue: a pharmacist under a collaborative practice agreement, or
    # a smaller quantity on a refill (pharmacy/rules/authority.py decides who may).
    S.NEEDS_REVIEW: {S.APPROVED, S.APPROVED_WITH_CHANGES, S.DENIED, S.AWAITING_PRESCRIBER,
                     S.REPLACED_BY_NEW_PRESCRIPTION},
    S.AWAITING_PRESCRIBER: {S.APPROVED, S.APPROVED_WITH_CHANGES, S.DENIED, S.EXPIRED, S.AWAITING_NEW_PRESCRIPTION,
                            S.REPLACED_BY_NEW_PRESCRIPTION},
    # The new prescription (NCPDP NewRx) arrives → replaced; none within NEW_PRESCRIPTION_WAIT_DAYS →
    # back to the pharmacist queue (refills/new_prescriptions.py).
    S.AWAITING_NEW_PRESCRIPTION: {S.REPLACED_BY_NEW_PRESCRIPTION, S.NEEDS_REVIEW},
    S.AUTO_APPROVED: {S.SENT_TO_PHARMACY},
    S.APPROVED: {S.SENT_TO_PHARMACY},
    S.APPROVED_WITH_CHANGES: {S.SENT_TO_PHARMACY},
    S.SENT_TO_PHARMACY: {S.FILLED, S.PARTIALLY_FILLED, S.NOT_DISPENSED},
    S.PARTIALLY_FILLED: {S.FILLED, S.PICKED_UP, S.NOT_DISPENSED},
    S.FILLED: {S.PICKED_UP},
    S.EXPIRED: {S.NEEDS_REVIEW, S.REPLACED_BY_NEW_PRESCRIPTION},  # escalated back to the pharmacist queue
    S.REPLACED_BY_NEW_PRESCRIPTION: set(),
    S.DENIED: set(),
    S.NOT_DISPENSED: set(),
    S.PICKED_UP: set(),
    S.CANCELLED: set(),
}
# "Open" = still needs someone to act before the pharmacy has an answer; one per prescription.
OPEN_STATUSES = (S.RECEIVED, S.NEEDS_REVIEW, S.AWAITING_PRESCRIBER, S.AUTO_APPROVED, S.APPROVED,
                 S.APPROVED_WITH_CHANGES, S.EXPIRED, S.AWAITING_NEW_PRESCRIPTION)
CANCELLABLE = set(OPEN_STATUSES)
APPROVED_STATUSES = (S.AUTO_APPROVED, S.APPROVED, S.APPROVED_WITH_CHANGES)


def can_transition(current: str, target: str) -> bool:
    if target == S.CANCELLED:
        return current in CANCELLABLE
    return target in TRANSITIONS.get(current, set())


class ProtocolMode(models.TextChoices):
    OFF = "off", "Off"
    SHADOW = "shadow", "Shadow (record only; a person decides)"
    ASSIST = "assist", "Assist (pre-fill the suggestion)"
    AUTO = "auto", "Auto (decide; recorded as system actor)"


class LinkStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    USED = "used", "Used"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class IntakeStatus(models.TextChoices):
    MATCHED = "matched", "Matched (request opened)"
    TRIAGE = "triage", "Needs staff triage"
    RESOLVED = "resolved", "Resolved by staff"
    DISMISSED = "dismissed", "Dismissed"


class IntakeChannel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"
    PORTAL = "portal", "Portal"


# One inbound status set for every channel, defined once in the core pipeline (pharmacy/inbound.py).
InboundStatus = _core_inbound.InboundStatus
