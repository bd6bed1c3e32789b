"""Reconciliation enumerations and allowed-transition tables (DESIGN.md: ReconciliationTask,
Discrepancy, InboundMessage)."""
from django.db import models

from pharmacy import inbound as _core_inbound


class Channel(models.TextChoices):
    MLLP = "mllp", "HL7 v2 over MLLP"
    HTTP_HL7 = "http_hl7", "HL7 v2 over HTTP"
    HTTP_FHIR = "http_fhir", "FHIR R4 over HTTP"
    HTTP_DOCUMENT = "http_document", "C-CDA document over HTTP"
    FOLDER = "folder", "Dropped file (Direct / SFTP)"
    PULL = "pull", "Pulled from the EHR's FHIR endpoint"


class PayloadFormat(models.TextChoices):
    HL7V2 = "hl7v2", "HL7 v2"
    FHIR = "fhir", "FHIR R4"
    CCDA = "ccda", "C-CDA"
    UNKNOWN = "unknown", "Unknown"


# One inbound status set for every channel, defined once in the core pipeline (pharmacy/inbound.py).
InboundStatus = _core_inbound.InboundStatus
IS = InboundStatus
INBOUND_TRANSITIONS: dict[str, set[str]] = _core_inbound.TRANSITIONS


class TaskKind(models.TextChoices):
    DISCHARGE = "discharge", "Hospital discharge"
    ADMISSION = "admission", "Admission / transfer"
    UPDATE = "update", "EHR list update"
    PULL = "pull", "EHR record pulled"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_REVIEW = "in_review", "In review"
    COMPLETED = "completed", "Completed"


TS = TaskStatus
TASK_TRANSITIONS: dict[str, set[str]] = {
    TS.OPEN: {TS.IN_REVIEW, TS.COMPLETED},
    TS.IN_REVIEW: {TS.COMPLETED},
    TS.COMPLETED: set(),
}
OPEN_TASK_STATUSES = (TS.OPEN, TS.IN_REVIEW)


class Priority(models.TextChoices):
    # Ordering key: HIGH first. Values match pharmacy.drug_classes.RECONCILIATION_PRIORITIES.
    HIGH = "HIGH", "High"
    MEDIUM = "MEDIUM", "Medium"
    LOW = "LOW", "Low"


PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


class DiscrepancyKind(models.TextChoices):
    NEW_IN_EHR = "new_in_ehr", "New in EHR"
    MISSING_FROM_EHR = "missing_from_ehr", "Missing from EHR (possibly discontinued)"
    DOSE_CHANGE = "dose_change", "Dose change"
    FREQUENCY_CHANGE = "frequency_change", "Frequency change"
    THERAPEUTIC_DUPLICATION = "therapeutic_duplication", "Therapeutic duplication"
    ALLERGY_CONFLICT = "allergy_conflict", "Allergy conflicts with an active prescription"
    NEW_ALLERGY = "new_allergy", "Allergy not on the pharmacy's file"


class DiscrepancyAction(models.TextChoices):
    """What accepting a discrepancy does (reconciliation/services.py applies it)."""

    CREATE_PENDING = "create_pending", "Create a pending prescription to confirm with the prescriber"
    HOLD = "hold", "Put the prescription on hold"
    DISCONTINUE = "discontinue", "Discontinue the prescription"
    REPLACE_PENDING = "replace_pending", "Hold the prescription and create a pending one with the EHR's directions"
    ADD_ALLERGY = "add_allergy", "Add the allergy to the pharmacy's file"
    NONE = "none", "Record the review only"


class DiscrepancyStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted (applied)"
    REJECTED = "rejected", "Rejected"


DS = DiscrepancyStatus
DISCREPANCY_TRANSITIONS: dict[str, set[str]] = {
    DS.PROPOSED: {DS.ACCEPTED, DS.REJECTED},
    DS.ACCEPTED: set(),
    DS.REJECTED: set(),
}


class MatchOutcome(models.TextChoices):
    EXACT = "exact", "Exact (identifier and assigning authority)"
    PROBABLE = "probable", "Probable (name, birth date and sex)"
    AMBIGUOUS = "ambiguous", "Ambiguous (several candidates)"
    NONE = "none", "No match"


class MatchItemStatus(models.TextChoices):
    OPEN = "open", "Needs a person"
    RESOLVED = "resolved", "Resolved (patient chosen)"
    DISMISSED = "dismissed", "Dismissed"

# The tables above are checked by the core workflow helper (pharmacy/workflow.py: move / check_transition).
