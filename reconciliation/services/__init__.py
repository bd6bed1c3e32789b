"""Every reconciliation state change: storing and processing inbound messages, matching patients,
opening tasks, accepting/rejecting discrepancies (and applying them), outbound FHIR via the outbox.

Inbound is store first, then process (DESIGN.md): ``inbound_receive`` commits the raw payload in
its own transaction; ``inbound_process`` reads, matches and writes in a second one; a failure
rolls that one back and marks the stored message failed with its error, for retry.

One module per aggregate (issue 12); every public name stays importable from
``reconciliation.services``:

- ``_common``: the system actors and the per-ingest cache of their user rows.
- ``inbound``: receive (store first), process, ingest, retry, match resolution.
- ``matching``: patient-match items, EHR links written by a match, consent to exchange.
- ``tasks``: opening a task from a record; accepting (applying) and rejecting discrepancies.
- ``outbound``: FHIR to the EHR (after a pharmacist's action, with consent) through the outbox.
- ``pull``: pulling a linked patient's record from the EHR's FHIR endpoint.
"""
from __future__ import annotations

from ._common import INBOUND, RECONCILIATION
from .inbound import (
    PIPELINE,
    SUPPORTED_HL7,
    UNREADABLE,
    IngestResult,
    ReconciliationPipeline,
    inbound_process,
    inbound_receive,
    inbound_retry,
    ingest,
    match_item_create_patient,
    match_item_resolve,
)
from .matching import ehr_link_set_consent
from .outbound import dispense_share, fill_recorded, non_adherence_lines
from .pull import pull_ehr_record, pull_ehr_record_start
from .tasks import ADMISSION_TYPES, DISCHARGE_TYPES, PARTIAL_LIST_TYPES, discrepancy_accept, discrepancy_reject

__all__ = [
    "match_item_create_patient",
    "ADMISSION_TYPES",
    "DISCHARGE_TYPES",
    "INBOUND",
    "IngestResult",
    "PARTIAL_LIST_TYPES",
    "PIPELINE",
    "RECONCILIATION",
    "ReconciliationPipeline",
    "SUPPORTED_HL7",
    "UNREADABLE",
    "discrepancy_accept",
    "discrepancy_reject",
    "dispense_share",
    "ehr_link_set_consent",
    "fill_recorded",
    "inbound_process",
    "inbound_receive",
    "inbound_retry",
    "ingest",
    "match_item_resolve",
    "non_adherence_lines",
    "pull_ehr_record",
    "pull_ehr_record_start",
]
