"""Enumerations of the core pharmacy domain."""
from django.db import models


class FacilityKind(models.TextChoices):
    HUMAN = "human", "Human medicine"
    VETERINARY = "veterinary", "Veterinary"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Species(models.TextChoices):
    HUMAN = "human", "Human"
    DOG = "dog", "Dog"
    CAT = "cat", "Cat"
    HORSE = "horse", "Horse"
    RABBIT = "rabbit", "Rabbit"
    BIRD = "bird", "Bird"
    OTHER = "other", "Other animal"


class ContactPreference(models.TextChoices):
    SMS = "sms", "Text message"
    EMAIL = "email", "E-mail"
    PHONE = "phone", "Phone call"
    NONE = "none", "No messages"


class DeaSchedule(models.TextChoices):
    # Controlled Substances Act schedules (21 CFR 1308.12–1308.15); "none" = not controlled.
    NONE = "none", "Not controlled"
    II = "2", "Schedule II"
    III = "3", "Schedule III"
    IV = "4", "Schedule IV"
    V = "5", "Schedule V"


class DrugSpecies(models.TextChoices):
    HUMAN = "human", "Human"
    VETERINARY = "veterinary", "Veterinary"


class PrescriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    EXPIRED = "expired", "Expired"
    DISCONTINUED = "discontinued", "Discontinued"
    COMPLETED = "completed", "Completed"
    PENDING = "pending", "Pending prescriber confirmation"


# Allowed prescription status changes (pharmacy/services.py prescription_update). Expired,
# discontinued and completed are final: a new authorization is a new prescription (21 CFR 1306.22
# for controlled refills; state pharmacy law for the rest).
PRESCRIPTION_TRANSITIONS: dict[str, frozenset[str]] = {
    PrescriptionStatus.PENDING: frozenset({PrescriptionStatus.ACTIVE, PrescriptionStatus.DISCONTINUED}),
    PrescriptionStatus.ACTIVE: frozenset({PrescriptionStatus.ON_HOLD, PrescriptionStatus.DISCONTINUED,
                                          PrescriptionStatus.COMPLETED, PrescriptionStatus.EXPIRED}),
    PrescriptionStatus.ON_HOLD: frozenset({PrescriptionStatus.ACTIVE, PrescriptionStatus.DISCONTINUED,
                                           PrescriptionStatus.EXPIRED}),
    PrescriptionStatus.EXPIRED: frozenset(),
    PrescriptionStatus.DISCONTINUED: frozenset(),
    PrescriptionStatus.COMPLETED: frozenset(),
}


class FillStatus(models.TextChoices):
    DISPENSED = "dispensed", "Dispensed"
    PARTIALLY_DISPENSED = "partially_dispensed", "Partially dispensed"
    NOT_DISPENSED = "not_dispensed", "Not dispensed"
    PICKED_UP = "picked_up", "Picked up"
    RETURNED = "returned", "Returned to stock"


class AllergySeverity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    UNKNOWN = "unknown", "Unknown"


class AllergyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    RESOLVED = "resolved", "Resolved"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class RecordSource(models.TextChoices):
    PHARMACY = "pharmacy", "Pharmacy"
    PATIENT = "patient", "Patient reported"
    EHR = "ehr", "EHR"
    PRESCRIBER = "prescriber", "Prescriber"


class DiagnosisStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"
    INACTIVE = "inactive", "Inactive"


class AbnormalFlag(models.TextChoices):
    # HL7 v2 table 0078 (abbreviated): N normal, L/H low/high, LL/HH critical, A abnormal.
    NORMAL = "N", "Normal"
    LOW = "L", "Low"
    HIGH = "H", "High"
    CRITICAL_LOW = "LL", "Critically low"
    CRITICAL_HIGH = "HH", "Critically high"
    ABNORMAL = "A", "Abnormal"
    NONE = "", "Not flagged"


class EncounterKind(models.TextChoices):
    OFFICE_VISIT = "office_visit", "Office visit"
    TELEHEALTH = "telehealth", "Telehealth visit"
    EXAM = "exam", "Veterinary examination"
    ADMISSION = "admission", "Hospital admission"
    DISCHARGE = "discharge", "Hospital discharge"
    EMERGENCY = "emergency", "Emergency visit"
    LAB = "lab", "Lab draw"


class OutboundTransport(models.TextChoices):
    FILE = "file", "File outbox folder"
    HTTP = "http", "HTTP POST"
    NONE = "none", "Do not send"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending (claimed by a worker)"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (gave up)"


class Transport(models.TextChoices):
    FILE = "file", "File outbox folder"
    HTTP = "http", "HTTP POST"
    MLLP = "mllp", "HL7 MLLP"
    EMAIL = "email", "E-mail"
    SMS = "sms", "Text message"
