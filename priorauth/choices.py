"""Prior authorization enumerations and the PACase transition table (DESIGN.md: PACase)."""

from django.db import models


class CaseStatus(models.TextChoices):
    OPENED = "opened", "Opened"
    GATHERING = "gathering", "Gathering evidence"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    SUBMITTED = "submitted", "Submitted to payer"
    PENDED = "pended", "Pended (payer questions)"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    APPEALED = "appealed", "Appealed"
    CLOSED = "closed", "Closed by payer"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Authorization expired"


S = CaseStatus
# DESIGN.md: opened → gathering → ready_for_review → submitted → pended (questions) →
# approved | denied → appealed → …, plus cancelled, expired. "closed" is the payer closing the
# case without a decision (NCPDP ePA ResponseStatus Closed, STANDARDS.md "ePA").
TRANSITIONS: dict[str, set[str]] = {
    S.OPENED: {S.GATHERING},
    S.GATHERING: {S.READY_FOR_REVIEW},
    S.READY_FOR_REVIEW: {S.SUBMITTED},
    S.SUBMITTED: {S.PENDED, S.APPROVED, S.DENIED, S.CLOSED},
    S.PENDED: {S.SUBMITTED, S.APPROVED, S.DENIED, S.CLOSED},
    S.DENIED: {S.APPEALED},
    S.APPEALED: {S.PENDED, S.APPROVED, S.DENIED, S.CLOSED},
    S.APPROVED: {S.EXPIRED},
    S.CLOSED: set(),
    S.CANCELLED: set(),
    S.EXPIRED: set(),
}
OPEN_STATUSES = (S.OPENED, S.GATHERING, S.READY_FOR_REVIEW, S.SUBMITTED, S.PENDED, S.DENIED, S.APPEALED)
CANCELLABLE = {S.OPENED, S.GATHERING, S.READY_FOR_REVIEW, S.SUBMITTED, S.PENDED, S.DENIED, S.APPEALED}
AWAITING_PAYER = (S.SUBMITTED, S.APPEALED)
WORK_STATUSES = (S.READY_FOR_REVIEW, S.PENDED, S.DENIED)  # a person must act
DECIDED_STATUSES = (S.APPROVED, S.DENIED, S.CLOSED, S.EXPIRED)


def can_transition(current: str, target: str) -> bool:
    if target == S.CANCELLED:
        return current in CANCELLABLE
    return target in TRANSITIONS.get(current, set())


class Benefit(models.TextChoices):
    # STANDARDS.md: pharmacy-benefit drugs go through NCPDP SCRIPT ePA; Da Vinci PAS covers
    # medical-benefit drugs only.
    PHARMACY = "pharmacy", "Pharmacy benefit (NCPDP SCRIPT ePA)"
    MEDICAL = "medical", "Medical benefit (Da Vinci PAS)"


class Adapter(models.TextChoices):
    EPA = "epa", "NCPDP SCRIPT ePA"
    PAS = "pas", "Da Vinci PAS (FHIR)"


class RolloutMode(models.TextChoices):
    OFF = "off", "Off (no draft)"
    SHADOW = "shadow", "Shadow (draft made, hidden; agreement recorded)"
    ASSIST = "assist", "Assist (draft shown; a pharmacist approves)"
    AUTO = "auto", "Auto (submitted without review when every criterion is met)"


class Trigger(models.TextChoices):
    REJECT_75 = "reject_75", "Claim reject 75"
    STAFF = "staff", "Opened by staff"
    RENEWAL = "renewal", "Renewal before expiry"


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    PENDED = "pended", "Pended"
    CLOSED = "closed", "Closed"


class ResponseSource(models.TextChoices):
    PUSH = "push", "Pushed by the payer (API)"
    POLL = "poll", "Polled from the payer"
    DELIVERY = "delivery", "Answer to our submission"


class SubmissionKind(models.TextChoices):
    INITIATION = "initiation", "ePA PAInitiationRequest"
    REQUEST = "request", "ePA PARequest (answers)"
    APPEAL = "appeal", "Appeal"
    CANCEL = "cancel", "Cancel"
    PAS_CLAIM = "pas_claim", "PAS Claim/$submit"


class AutoReview(models.TextChoices):
    PENDING = "", "Not reviewed"
    OK = "ok", "Reviewed: correct"
    ERROR = "error", "Reviewed: error"


# NCPDP Telecommunication D.0 reject codes, field 511-FB (STANDARDS.md "Pharmacy claims").
# 75 opens a PA case (DESIGN.md); the others are recorded as their own reasons.
REJECT_CODES: dict[str, str] = {
    "70": "Product/service not covered",
    "75": "Prior authorization required",
    "76": "Plan limitations exceeded",
    "79": "Refill too soon",
    "88": "DUR reject",
    "AG": "Days supply limitation",
    "MR": "Product not on formulary",
}
PA_REQUIRED = "75"
