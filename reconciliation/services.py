"""Every reconciliation state change: storing and processing inbound messages, matching patients,
opening tasks, accepting/rejecting discrepancies (and applying them), outbound FHIR via the outbox.

Inbound is store first, then process (DESIGN.md): ``inbound_receive`` commits the raw payload in
its own transaction; ``inbound_process`` reads, matches and writes in a second one; a failure
rolls that one back and marks the stored message failed with its error, for retry.
"""
from __future__ import annotations

import json
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, actor_user, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.inbound import (
    REPROCESSABLE,
    InboundPipeline,
    PayloadError,
    clean_text,
    decode_payload,
    json_loads_safe,
    next_attempt_at,
    payload_sha256,
    store,
)
from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord
from pharmacy.interop.detect import detect_format, read_clinical
from pharmacy.models import Allergy, Diagnosis, Drug, LabResult, Patient, Prescription
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, TECHNICIAN, require_role
from pharmacy.validators import icd10cm_is_valid, normalize_icd10cm

from . import choices, compare, facts
from .choices import (
    DiscrepancyAction,
    DiscrepancyStatus,
    InboundStatus,
    MatchItemStatus,
    MatchOutcome,
    TaskKind,
    TaskStatus,
)
from .conf import conf
from .matching import MatchResult, patient_match
from .models import AllergyFlag, Discrepancy, EhrLink, InboundMessage, PatientMatchItem, ReconciliationTask

INBOUND = system_actor("system:inbound")
RECONCILIATION = system_actor("system:reconciliation")
_system_users: ContextVar[dict | None] = ContextVar("reconciliation_system_users", default=None)


def _sys(actor: SystemActor):
    """The user row behind a system actor, looked up once per ingest (one query saved per write)."""
    cache = _system_users.get()
    if cache is None:
        return actor
    if actor.name not in cache:
        cache[actor.name] = actor_user(actor)
    return cache[actor.name]

# HL7 v2.5.1 message types this app processes (Ch. 3 ADT, Ch. 4 RDE/RDS/ORM/OMP — RDE^O25 is the
# pharmacy/treatment refill authorization request, v2.5 Ch. 4A event O25 — Ch. 7 ORU);
# anything else is stored and marked unsupported, never dropped.
SUPPORTED_HL7 = {"ADT^A01", "ADT^A03", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "RDE^O11", "RDE^O25",
                 "RDS^O13", "ORM^O01", "OMP^O09", "ORU^R01"}
DISCHARGE_TYPES = {"ADT^A03", "DischargeSummary"}
ADMISSION_TYPES = {"ADT^A01", "ADT^A04", "TransferSummary"}
# Order messages carry one order, not the patient's whole list: nothing is "missing" from them.
PARTIAL_LIST_TYPES = {"RDE^O11", "RDE^O25", "RDS^O13", "ORM^O01", "OMP^O09", "ORU^R01", "MedicationRequest",
                      "MedicationDispense", "MedicationStatement", "Medication", "AllergyIntolerance"}


# --------------------------------------------------------------------------------------------
# Receiving: store first
# --------------------------------------------------------------------------------------------

_CDA_ID = re.compile(r"<(?:\w+:)?id\b[^>]*?root=\"([^\"]+)\"(?:[^>]*?extension=\"([^\"]+)\")?", re.S)
_CDA_CUSTODIAN = re.compile(r"<(?:\w+:)?custodian>.*?<(?:\w+:)?name[^>]*>([^<]+)<", re.S)


def _header(fmt: str, text: str) -> tuple[str, str, str, str]:
    """(sender, control id, message type, error) read cheaply for deduplication; never raises
    (hostile input is an error to store, not a crash), and every value is storable text."""
    try:
        values = _read_header(fmt, text)
    except Exception as exc:  # noqa: BLE001 — anything a reader trips on makes the message rejected
        return "", "", "", f"header unreadable: {type(exc).__name__}: {exc}"[:500]
    return tuple(clean_text(str(v)) for v in values)  # type: ignore[return-value]


def _read_header(fmt: str, text: str) -> tuple[str, str, str, str]:
    if fmt == "hl7v2":
        from pharmacy.interop.hl7v2 import message_header

        try:
            header = message_header(text)
        except ClinicalParseError as exc:
            return "", "", "", str(exc)
        return header["sender"][:200], header["control_id"][:200], header["type"][:64], ""
    if fmt == "fhir":
        try:
            data = json_loads_safe(text)
        except PayloadError as exc:
            return "", "", "", str(exc)
        if not isinstance(data, dict):
            return "", "", "", "FHIR JSON must be an object"
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        return str(meta.get("source") or "")[:200], str(data.get("id") or "")[:200], str(
            data.get("resourceType") or "")[:64], ""
    if fmt == "ccda":
        head = text[:20000]
        body_start = head.find("<component")
        m = _CDA_ID.search(head[: body_start if body_start > 0 else None])
        control = (f"{m.group(1)}^{m.group(2)}" if m and m.group(2) else (m.group(1) if m else ""))[:200]
        custodian = _CDA_CUSTODIAN.search(text[:200000])
        return (custodian.group(1).strip() if custodian else "")[:200], control, "ClinicalDocument", ""
    return "", "", "", "unrecognised format: expected HL7 v2 (MSH), FHIR JSON or C-CDA XML"


class ReconciliationPipeline(InboundPipeline):
    """HL7 v2, FHIR R4 and C-CDA in the core inbound pipeline (pharmacy/inbound.py)."""

    name = "reconciliation"
    model = InboundMessage

    def process(self, message_id: int) -> InboundMessage:
        return inbound_process(message_id=message_id)


PIPELINE = ReconciliationPipeline()


def inbound_receive(*, channel: str, payload: bytes | str, content_type: str = "", sender: str = "",
                    source_name: str = "", size: int | None = None) -> InboundMessage:
    """Store the raw payload (committed before any processing), refused ones included.

    ``payload`` may already be cut by the caller at the limit + 1 bytes (``size`` is then the size
    announced). Oversize, undecodable or header-less payloads are stored — the first
    ``RECON_MAX_PAYLOAD_BYTES`` of them — as rejected with the error. The rest is deduplicated on
    sender, control ID and SHA-256 (``pharmacy.inbound.dedupe_decision``): a resend is stored as a
    duplicate pointing at the original (``ingest`` reprocesses an original not yet processed)."""
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    limit = conf("RECON_MAX_PAYLOAD_BYTES")
    size = max(size or 0, len(raw))
    kept = raw[:limit]
    text = decode_payload(kept)
    fmt = detect_format(kept)
    header_sender, control_id, message_type, error = _header(fmt, text)
    if size > limit:
        error = f"payload of {size} bytes exceeds the {limit}-byte limit"
    message = InboundMessage(channel=channel, format=fmt, sender=clean_text(header_sender or sender)[:200],
                             control_id=control_id[:200], message_type=message_type[:64], payload=text,
                             size_bytes=size, payload_truncated=size > len(kept), payload_sha256=payload_sha256(kept),
                             content_type=clean_text(content_type)[:100], source_name=clean_text(source_name)[:255])
    if error:
        message.status, message.error = InboundStatus.REJECTED, error
        return store(message, actor=_sys(INBOUND), reason=f"Received over {channel}; rejected: {error}"[:500])
    decision = PIPELINE.decide(sender=message.sender, control_id=message.control_id, sha256=message.payload_sha256)
    if decision.kind != "new":
        original = InboundMessage.objects.get(pk=decision.original_id)
        message.status, message.duplicate_of = InboundStatus.DUPLICATE, original
        message.patient_id = original.patient_id
        return store(message, actor=_sys(INBOUND),
                     reason=f"Duplicate of message {original.pk} (same sender, control ID and content)")
    message.control_id_reused = decision.control_id_reused
    reason = f"Received over {channel}" + (
        f"; control ID {message.control_id} reused with other content" if decision.control_id_reused else "")
    return store(message, actor=_sys(INBOUND), reason=reason)


# --------------------------------------------------------------------------------------------
# Processing
# --------------------------------------------------------------------------------------------

def _move_message(message: InboundMessage, target: str, *, reason: str, fields: tuple[str, ...] = ()) -> None:
    if not choices.can_transition(choices.INBOUND_TRANSITIONS, message.status, target):
        raise TransitionNotAllowed(model="inbound message", current=message.status, target=target)
    message.status = target
    save_with_history(message, actor=_sys(INBOUND), reason=reason[:500], update_fields=["status", *fields])


def _supported(fmt: str, records: list[ClinicalRecord]) -> str:
    """"" when supported, else why not."""
    if fmt == "hl7v2":
        types = sorted({r.message_type for r in records if r.message_type not in SUPPORTED_HL7})
        if types:
            return f"message type {', '.join(types)} is not processed by reconciliation (stored only)"
    return ""


def inbound_process(*, message_id: int, patient: Patient | None = None) -> InboundMessage:
    """Read, match and apply one stored message in one transaction. Safe to run twice: a message
    that is already processed, duplicate or unsupported is returned unchanged. Failures are kept."""
    try:
        with transaction.atomic():
            message = InboundMessage.objects.select_for_update().get(pk=message_id)
            if message.status not in (*REPROCESSABLE, InboundStatus.AWAITING_MATCH):
                return message
            if message.payload_truncated:
                return message  # oversize: only its first bytes are on file, nothing to read again
            if message.status == InboundStatus.AWAITING_MATCH and patient is None:
                return message
            message.attempts += 1
            _process(message, patient=patient)
            return message
    except (OperationalError, InterfaceError):
        raise  # the database is away: nothing can be recorded; the caller answers AE / 503
    except Exception as exc:  # noqa: BLE001 — every failure is kept with its error for retry
        error = str(exc) if isinstance(exc, (ClinicalParseError, DomainError, ValidationError)) else (
            f"{type(exc).__name__}: {exc}")
        error = clean_text(error)
        cache = _system_users.get()
        if cache:
            cache.clear()  # a user row created in the rolled-back transaction is gone
        unreadable = isinstance(exc, UNREADABLE)
        with transaction.atomic():
            message = InboundMessage.objects.select_for_update().get(pk=message_id)
            if isinstance(exc, IntegrityError) and message.status != InboundStatus.AWAITING_MATCH:
                twin = _processed_twin(message)
                if twin is not None:  # a concurrent twin was processed first: this one is its duplicate
                    message.duplicate_of, message.patient_id = twin, twin.patient_id
                    _move_message(message, InboundStatus.DUPLICATE, reason=f"Duplicate of message {twin.pk}",
                                  fields=("duplicate_of", "patient"))
                    return message
            message.attempts += 1
            message.error = error[:4000]
            if message.status == InboundStatus.AWAITING_MATCH:
                save_with_history(message, actor=_sys(INBOUND), reason=f"Processing failed: {error}"[:500],
                                  update_fields=["attempts", "error"])
            else:
                # Unreadable → rejected (HL7 AR, not retried by itself); any other failure → failed,
                # retried with backoff by the sweep up to INBOUND_MAX_ATTEMPTS (HL7 AE).
                message.next_attempt_at = None if unreadable else next_attempt_at(message.attempts, timezone.now())
                _move_message(message, InboundStatus.REJECTED if unreadable else InboundStatus.FAILED,
                              reason=f"Processing failed: {error}", fields=("attempts", "error", "next_attempt_at"))
        message.unreadable = unreadable  # → HL7 AR rather than AE
        return message


# What makes a payload unreadable (refused, HL7 AR) rather than a processing failure (AE, retried).
UNREADABLE = (ClinicalParseError, PayloadError, RecursionError, LookupError, UnicodeError)


def _processed_twin(message: InboundMessage) -> InboundMessage | None:
    return (InboundMessage.objects.filter(sender=message.sender, control_id=message.control_id,
                                          payload_sha256=message.payload_sha256, status=InboundStatus.PROCESSED)
            .exclude(pk=message.pk).first())


def _process(message: InboundMessage, *, patient: Patient | None) -> None:
    fmt, records = read_clinical(message.payload.encode("utf-8", "surrogatepass"))
    message.format = fmt
    why_not = _supported(fmt, records)
    if why_not:
        message.error = why_not
        _move_message(message, InboundStatus.UNSUPPORTED, reason=why_not, fields=("attempts", "error", "format"))
        return
    summary: dict = {"records": len(records), "tasks": [], "lab_results": 0, "diagnoses": 0, "warnings": []}
    # Match every record first: a batch waiting for a person writes nothing yet. A patient chosen by
    # a person (or the pull's patient) stands in for the records that do not match on their own.
    matches: list[MatchResult] = []
    for record in records:
        summary["warnings"].extend(record.warnings[:20])
        match = patient_match(data=record.patient, sender=record.sender or message.sender)
        if match.patient is None and patient is None:
            _open_match_item(message, record, match)
            summary["match"] = {"outcome": match.outcome, "reasons": match.reasons}
            message.summary = summary
            message.error = f"Patient not matched ({match.outcome}): a person must choose the patient."
            _move_message(message, InboundStatus.AWAITING_MATCH, reason=message.error,
                          fields=("attempts", "error", "format", "summary"))
            return
        matches.append(match)
    target = patient
    for record, match in zip(records, matches, strict=True):
        if match.patient is not None:
            target = match.patient
            _ensure_link(target, match, actor=_sys(INBOUND))
            summary["match"] = {"outcome": match.outcome, "patient_id": target.pk, "score": match.score,
                                "reasons": match.reasons}
        else:
            target = patient
            summary["match"] = {"outcome": "chosen", "patient_id": target.pk, "score": 1.0, "reasons": []}
        summary["lab_results"] += _store_labs(target, record, message)
        summary["diagnoses"] += _store_problems(target, record, message)
        task = _open_task(target, record, message)
        if task is not None:
            summary["tasks"].append(task.pk)
    message.summary = summary
    message.patient = target
    message.processed_at = timezone.now()
    message.error = ""
    message.next_attempt_at = None
    _move_message(message, InboundStatus.PROCESSED,
                  reason=f"Processed: {len(summary['tasks'])} task(s), {summary['lab_results']} lab result(s), "
                         f"{summary['diagnoses']} diagnosis(es)",
                  fields=("attempts", "error", "format", "summary", "patient", "processed_at", "next_attempt_at"))


def _open_match_item(message: InboundMessage, record: ClinicalRecord, match: MatchResult) -> PatientMatchItem:
    item = PatientMatchItem.objects.filter(inbound_message=message).first()
    data = facts.jsonable(record.to_dict()["patient"]) if record.patient else {}
    if item is None:
        item = PatientMatchItem(inbound_message=message)
    item.outcome, item.candidates, item.patient_data, item.status = (
        match.outcome, match.candidates, data | {"ehr_system": match.ehr_system, "external_id": match.external_id},
        MatchItemStatus.OPEN)
    return save_with_history(item, actor=_sys(INBOUND), reason=f"Patient match needed: {match.outcome}")


def _ensure_link(patient: Patient, match: MatchResult, *, actor: Actor) -> EhrLink | None:
    if match.link is not None:
        return match.link
    if not match.external_id:
        return None
    link = EhrLink.objects.filter(ehr_system=match.ehr_system, external_id=match.external_id).first()
    if link is not None:
        return link
    user = actor_user(actor)
    return save_with_history(EhrLink(
        patient=patient, ehr_system=match.ehr_system, external_id=match.external_id,
        linked_by=user, match_outcome=match.outcome,
        match_score=round(match.score, 2)), actor=actor,
        reason=f"Linked by {match.outcome} match ({'; '.join(match.reasons)})"[:500])


def _aware(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(12, 0))
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _store_labs(patient: Patient, record: ClinicalRecord, message: InboundMessage) -> int:
    """ORU/OBX and C-CDA/FHIR results with a LOINC code → LabResult rows (used by refill protocols)."""
    from pharmacy.validators import validate_loinc

    created = 0
    for lab in record.lab_results:
        if lab.code_system != "loinc" or not lab.code or lab.value in ("", None):
            continue
        try:
            validate_loinc(lab.code)
        except ValidationError:
            continue
        collected = _aware(lab.observed_at) or message.received_at
        if LabResult.objects.filter(patient=patient, loinc_code=lab.code, collected_at=collected).exists():
            continue
        flag = (lab.abnormal_flag or "").upper()
        flag = flag if flag in {"N", "L", "H", "LL", "HH", "A"} else ""
        save_with_history(LabResult(
            patient=patient, loinc_code=lab.code, name=(lab.name or lab.code)[:200], value=str(lab.value)[:64],
            unit=(lab.unit or "")[:32], reference_range=(lab.reference_range or "")[:64], abnormal_flag=flag,
            collected_at=collected, source="ehr"), actor=_sys(INBOUND), reason=f"From inbound message {message.pk}")
        created += 1
    return created


def _store_problems(patient: Patient, record: ClinicalRecord, message: InboundMessage) -> int:
    """DG1 / problem entries with a valid ICD-10-CM code → Diagnosis rows (PA evidence, protocols)."""
    created = 0
    for problem in record.problems:
        if problem.code_system != "icd10cm" or not problem.code:
            continue
        code = normalize_icd10cm(problem.code)
        if not icd10cm_is_valid(code):
            continue
        if Diagnosis.objects.filter(patient=patient, code=code).exists():
            continue
        diagnosis = Diagnosis(
            patient=patient,
            code=code,
            description=(problem.description or "")[:255],
            onset_date=problem.onset if not isinstance(problem.onset, datetime) else problem.onset.date(),
            status="resolved" if (problem.status or "").lower() in ("resolved", "inactive") else "active",
            source="ehr",
        )
        diagnosis.clean()
        save_with_history(diagnosis, actor=_sys(INBOUND), reason=f"From inbound message {message.pk}")
        created += 1
    return created


def _task_kind(record: ClinicalRecord, message: InboundMessage) -> str:
    if record.message_type in DISCHARGE_TYPES or record.is_discharge:
        return TaskKind.DISCHARGE
    if message.channel == choices.Channel.PULL:
        return TaskKind.PULL
    if record.message_type in ADMISSION_TYPES:
        return TaskKind.ADMISSION
    return TaskKind.UPDATE


def _active_prescriptions(patient: Patient) -> list[Prescription]:
    return list(Prescription.objects.filter(patient=patient, status="active").select_related("drug", "prescriber")
                .order_by("id"))


def _open_task(patient: Patient, record: ClinicalRecord, message: InboundMessage) -> ReconciliationTask | None:
    """Compare the record's lists with the pharmacy's and open a task when anything differs.
    Nothing in the pharmacy's records changes here: only acceptance applies a change."""
    if not (record.medications or record.allergies):
        return None
    medications = record.medications
    if record.format == "ccda" and record.is_discharge:
        # A discharge summary's list is its Discharge Medications section (LOINC 10183-2), not the
        # hospital-course or admission lists (C-CDA R2.1 template 2.16.840.1.113883.10.20.22.2.11.1).
        discharge = [m for m in medications if m.source in ("10183-2", "75311-1")]
        medications = discharge or medications
    prescriptions = _active_prescriptions(patient)
    allergies = list(Allergy.objects.filter(patient=patient).exclude(status="entered_in_error"))
    ehr_meds = [facts.ehr_medication(m) for m in medications]
    ehr_allergies = [facts.ehr_allergy(a) for a in record.allergies]
    # a list that says "no information" is unknown: nothing is missing from it (C-CDA nullFlavor NI)
    complete = bool(medications) and not record.medications_unknown and record.message_type not in PARTIAL_LIST_TYPES
    findings = compare.compare(
        ehr_medications=ehr_meds, prescriptions=[facts.pharmacy_prescription(rx) for rx in prescriptions],
        ehr_allergies=ehr_allergies, pharmacy_allergies=[facts.pharmacy_allergy(a) for a in allergies],
        ehr_list_complete=complete)
    if not findings:
        return None
    rank = min(choices.PRIORITY_RANK[f.priority] for f in findings)
    task = save_with_history(ReconciliationTask(
        patient=patient, inbound_message=message, kind=_task_kind(record, message),
        priority=[p for p, r in choices.PRIORITY_RANK.items() if r == rank][0], priority_rank=rank,
        source_format=record.format if record.format in choices.PayloadFormat.values else "unknown",
        ehr_system=(record.sender or message.sender)[:200],
        ehr_medications=facts.as_dicts(ehr_meds), ehr_allergies=facts.as_dicts(ehr_allergies),
        no_known_allergies=record.no_known_allergies,
        pharmacy_medications=[{"id": rx.pk, "drug": str(rx.drug), "sig": rx.sig, "status": rx.status,
                               "prescriber": str(rx.prescriber)} for rx in prescriptions],
        pharmacy_allergies=[{"id": a.pk, "substance": a.substance, "reaction": a.reaction, "status": a.status}
                            for a in allergies]),
        actor=_sys(RECONCILIATION), reason=f"Opened from inbound message {message.pk} ({record.message_type})")
    rows = [Discrepancy(task=task, kind=f.kind, priority=f.priority, action=f.action, summary=f.summary[:300],
                        suggested_action=f.suggested_action, ehr_data=facts.jsonable(f.ehr),
                        pharmacy_data=facts.jsonable(f.pharmacy) | {"reasons": f.reasons},
                        prescription_id=f.prescription_id, position=index)
            for index, f in enumerate(sorted(findings, key=lambda f: choices.PRIORITY_RANK[f.priority]))]
    from pharmacy.actors import bulk_create_recorded

    bulk_create_recorded(
        Discrepancy, rows, actor=_sys(RECONCILIATION), reason=f"Found comparing with message {message.pk}"
    )
    return task


# --------------------------------------------------------------------------------------------
# Ingest (receive + process + acknowledge), retry, match resolution
# --------------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    message: InboundMessage
    ack_code: str  # AA processed/duplicate/unsupported/awaiting match · AE failed (kept) · AR unreadable
    error: str = ""


def ingest(*, channel: str, payload: bytes | str, content_type: str = "", sender: str = "",
           source_name: str = "", size: int | None = None) -> IngestResult:
    """Store, then process; the answer is known only after both commits (HL7 ACK after commit)."""
    token = _system_users.set({})
    try:
        return _ingest(channel=channel, payload=payload, content_type=content_type, sender=sender,
                       source_name=source_name, size=size)
    finally:
        _system_users.reset(token)


def _ingest(*, channel, payload, content_type, sender, source_name, size=None) -> IngestResult:
    message = inbound_receive(channel=channel, payload=payload, content_type=content_type, sender=sender,
                              source_name=source_name, size=size)
    if message.status == InboundStatus.REJECTED:  # oversize or header unreadable: stored, refused
        return IngestResult(message, "AR", message.error)
    if message.status == InboundStatus.DUPLICATE:
        original = message.duplicate_of
        if original.status in REPROCESSABLE:  # a resend of a message never processed: process it now
            original = inbound_process(message_id=original.pk)
        result = _result(original)
        return IngestResult(message, result.ack_code, result.error)
    return _result(inbound_process(message_id=message.pk))


def _result(message: InboundMessage) -> IngestResult:
    """HL7 v2.5.1 §2.9.2 / MSA-1: AA accepted, AE could not be processed (kept, retried), AR refused."""
    if message.status == InboundStatus.REJECTED:
        return IngestResult(message, "AR", message.error)
    if message.status == InboundStatus.FAILED:
        return IngestResult(message, "AR" if getattr(message, "unreadable", False) else "AE", message.error)
    if message.status == InboundStatus.RECEIVED:  # still being processed elsewhere (cannot happen under lock)
        return IngestResult(message, "AE", "message not processed yet; resend later")
    return IngestResult(message, "AA")


def inbound_retry(*, message_id: int, actor: Actor) -> InboundMessage:
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, INTEGRATOR, action="retry an inbound message")
    message = InboundMessage.objects.filter(pk=message_id).first()
    if message is None:
        raise DomainError(f"Inbound message {message_id} does not exist.", code="not_found")
    if message.status not in (InboundStatus.FAILED, InboundStatus.REJECTED) or message.payload_truncated:
        raise TransitionNotAllowed(model="inbound message", current=message.status, target="retried",
                                   message=f"Only a failed or rejected message can be retried; this one is "
                                           f"{message.status}{' (oversize)' if message.payload_truncated else ''}.")
    if not message.message_type and not message.control_id and message.format in ("unknown", "hl7v2"):
        # The header could not be read at receipt: read it again (the reader may have been fixed).
        sender, control_id, message_type, error = _header(message.format, message.payload)
        if not error:
            message.sender, message.control_id, message.message_type = (
                sender or message.sender,
                control_id,
                message_type,
            )
            save_with_history(message, actor=actor, reason="Header read on retry",
                              update_fields=["sender", "control_id", "message_type"])
    record_event(kind="reconciliation.inbound_retried", actor=actor, subject=message, patient_id=message.patient_id,
                 summary=f"Retry of inbound message {message.pk}")
    return inbound_process(message_id=message.pk)


def match_item_resolve(*, item_id: int, patient_id: int, actor: Actor) -> PatientMatchItem:
    """A person chose the patient: record the EHR link, then process the waiting message."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="match a patient")
    with transaction.atomic():
        item = PatientMatchItem.objects.select_for_update().select_related("inbound_message").get(pk=item_id)
        if item.status != MatchItemStatus.OPEN:
            raise TransitionNotAllowed(model="patient match", current=item.status, target=MatchItemStatus.RESOLVED)
        patient = Patient.objects.filter(pk=patient_id).first()
        if patient is None:
            raise DomainError(f"Patient {patient_id} does not exist.", code="not_found")
        item.status, item.resolved_patient = MatchItemStatus.RESOLVED, patient
        item.resolved_by, item.resolved_at = actor_user(actor), timezone.now()
        save_with_history(item, actor=actor, reason=f"Matched to patient {patient.pk}",
                          update_fields=["status", "resolved_patient", "resolved_by", "resolved_at"])
        data = item.patient_data or {}
        if data.get("external_id"):
            _ensure_link(patient, MatchResult(outcome=MatchOutcome.EXACT, patient=patient, score=1.0,
                                              ehr_system=data.get("ehr_system", "unknown"),
                                              external_id=data["external_id"], reasons=["chosen by a person"]),
                         actor=actor)
        record_event(kind="reconciliation.patient_matched", actor=actor, subject=item, patient_id=patient.pk,
                     summary=f"Inbound message {item.inbound_message_id} matched to patient {patient.pk}")
    inbound_process(message_id=item.inbound_message_id, patient=patient)
    item.refresh_from_db()
    return item


def ehr_link_set_consent(*, link_id: int, consent: bool, actor: Actor) -> EhrLink:
    require_role(actor, PHARMACIST, ADMIN, action="change consent to exchange")
    with transaction.atomic():
        link = EhrLink.objects.select_for_update().get(pk=link_id)
        link.consent_to_exchange = consent
        save_with_history(link, actor=actor, reason=f"Consent to exchange {'given' if consent else 'withdrawn'}",
                          update_fields=["consent_to_exchange"])
        record_event(kind="reconciliation.consent_changed", actor=actor, subject=link, patient_id=link.patient_id,
                     summary=f"Consent to exchange with {link.ehr_system}: {consent}")
    return link


# --------------------------------------------------------------------------------------------
# Accepting and rejecting discrepancies
# --------------------------------------------------------------------------------------------

def _locked_pair(discrepancy_id: int) -> tuple[ReconciliationTask, Discrepancy]:
    task_id = Discrepancy.objects.filter(pk=discrepancy_id).values_list("task_id", flat=True).first()
    if task_id is None:
        raise DomainError(f"Discrepancy {discrepancy_id} does not exist.", code="not_found")
    task = ReconciliationTask.objects.select_for_update().get(pk=task_id)  # task first: one lock order
    discrepancy = Discrepancy.objects.select_for_update().get(pk=discrepancy_id)
    return task, discrepancy


def _decide(discrepancy: Discrepancy, target: str, *, actor: Actor, note: str) -> None:
    if not choices.can_transition(choices.DISCREPANCY_TRANSITIONS, discrepancy.status, target):
        raise TransitionNotAllowed(model="discrepancy", current=discrepancy.status, target=target)
    discrepancy.status = target
    discrepancy.decided_by, discrepancy.decided_at, discrepancy.note = actor_user(actor), timezone.now(), note.strip()


def discrepancy_accept(*, discrepancy_id: int, actor: Actor, note: str = "") -> Discrepancy:
    """Accept and apply exactly this discrepancy's change, in one transaction with history."""
    require_role(actor, PHARMACIST, ADMIN, action="accept a reconciliation item")
    with transaction.atomic():
        task, discrepancy = _locked_pair(discrepancy_id)
        _decide(discrepancy, DiscrepancyStatus.ACCEPTED, actor=actor, note=note)
        discrepancy.applied = _apply(discrepancy, task, actor=actor)
        save_with_history(
            discrepancy,
            actor=actor,
            reason=f"Accepted{': ' + note.strip() if note.strip() else ''}"[:500],
            update_fields=[
                "status",
                "decided_by",
                "decided_at",
                "note",
                "applied",
                "created_prescription",
                "created_allergy",
            ],
        )
        record_event(kind="reconciliation.accepted", actor=actor, subject=discrepancy, patient_id=task.patient_id,
                     summary=f"{discrepancy.get_kind_display()} accepted: {discrepancy.summary}"[:300],
                     data={"task": task.pk, "action": discrepancy.action, "applied": discrepancy.applied})
        _after_decision(task, actor=actor)
    return discrepancy


def discrepancy_reject(*, discrepancy_id: int, actor: Actor, note: str = "") -> Discrepancy:
    require_role(actor, PHARMACIST, ADMIN, action="reject a reconciliation item")
    with transaction.atomic():
        task, discrepancy = _locked_pair(discrepancy_id)
        _decide(discrepancy, DiscrepancyStatus.REJECTED, actor=actor, note=note)
        save_with_history(
            discrepancy,
            actor=actor,
            reason=f"Rejected{': ' + note.strip() if note.strip() else ''}"[:500],
            update_fields=["status", "decided_by", "decided_at", "note"],
        )
        record_event(kind="reconciliation.rejected", actor=actor, subject=discrepancy, patient_id=task.patient_id,
                     summary=f"{discrepancy.get_kind_display()} rejected: {discrepancy.summary}"[:300],
                     data={"task": task.pk})
        _after_decision(task, actor=actor)
    return discrepancy


def _after_decision(task: ReconciliationTask, *, actor: Actor) -> None:
    if task.status == TaskStatus.OPEN:
        task.status = TaskStatus.IN_REVIEW
        save_with_history(task, actor=actor, reason="Review started", update_fields=["status"])
    if not task.discrepancies.filter(status=DiscrepancyStatus.PROPOSED).exists():
        task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, timezone.now(), actor_user(actor)
        save_with_history(task, actor=actor, reason="Every discrepancy decided",
                          update_fields=["status", "completed_at", "completed_by"])
        _send_summary(task, actor=actor)


def _rx_locked(discrepancy: Discrepancy) -> Prescription:
    if discrepancy.prescription_id is None:
        raise DomainError("This discrepancy names no prescription to change.", code="no_prescription")
    return Prescription.objects.select_for_update().select_related("drug").get(pk=discrepancy.prescription_id)


def _set_rx_status(rx: Prescription, status: str, *, actor: Actor, reason: str) -> dict:
    if rx.status not in ("active", "on_hold", "pending") or rx.status == status:
        raise DomainError(f"Rx {rx.pk} is {rx.get_status_display().lower()}; it cannot become {status}.",
                          code="prescription_not_changeable")
    before = rx.status
    rx.status = status
    save_with_history(rx, actor=actor, reason=reason[:500], update_fields=["status"])
    return {"model": "prescription", "id": rx.pk, "field": "status", "from": before, "to": status}


def _drug_for(ehr: dict, fallback: Drug | None = None) -> Drug:
    from .compare import default_catalog, normalise_strength

    ingredient = ehr.get("ingredient") or default_catalog().ingredient(ehr.get("name") or ehr.get("text") or "")
    drugs = list(Drug.objects.filter(name__iexact=ingredient, is_active=True).order_by("id"))
    if not drugs and fallback is not None and fallback.name.lower() == ingredient:
        drugs = [fallback]
    if not drugs:
        raise DomainError(f"“{ehr.get('name') or ehr.get('text')}” is not in the drug catalog; add the drug, then "
                          f"accept again.", code="drug_unknown")
    wanted = normalise_strength(ehr.get("strength", ""))
    return next((d for d in drugs if wanted and normalise_strength(d.strength) == wanted), drugs[0])


def _create_pending(task: ReconciliationTask, discrepancy: Discrepancy, *, actor: Actor,
                    like: Prescription | None = None) -> Prescription:
    ehr = discrepancy.ehr_data
    drug = _drug_for(ehr, like.drug if like else None)
    prescriber = like.prescriber if like else task.patient.primary_prescriber
    if prescriber is None:
        prescriber = (Prescription.objects.filter(patient=task.patient).select_related("prescriber")
                      .order_by("-written_date").first() or Prescription(prescriber=None)).prescriber
    if prescriber is None:
        raise DomainError("The patient has no primary prescriber to confirm a new prescription with.",
                          code="no_prescriber")
    sig = " ".join(p for p in [ehr.get("text") or ehr.get("name"), "(from EHR; confirm with prescriber)"] if p)
    rx = Prescription(patient=task.patient, prescriber=prescriber, drug=drug, sig=sig[:2000],
                      quantity=like.quantity if like else 30, days_supply=like.days_supply if like else 30,
                      refills_authorized=0, refills_remaining=0, written_date=timezone.localdate(),
                      pharmacy=like.pharmacy if like else task.patient.preferred_pharmacy, status="pending")
    return save_with_history(rx, actor=actor,
                             reason=f"Pending prescription from reconciliation task {task.pk} (discrepancy "
                                    f"{discrepancy.pk}); to confirm with the prescriber")


_SEVERITY = {"mild": "mild", "mi": "mild", "moderate": "moderate", "mo": "moderate", "severe": "severe", "sv": "severe"}


def _apply(discrepancy: Discrepancy, task: ReconciliationTask, *, actor: Actor) -> dict:
    """The change this discrepancy's action names — and nothing else."""
    action = discrepancy.action
    why = f"Reconciliation task {task.pk}, discrepancy {discrepancy.pk}: {discrepancy.summary}"
    if action == DiscrepancyAction.HOLD:
        return {"changes": [_set_rx_status(_rx_locked(discrepancy), "on_hold", actor=actor, reason=why)]}
    if action == DiscrepancyAction.DISCONTINUE:
        return {"changes": [_set_rx_status(_rx_locked(discrepancy), "discontinued", actor=actor, reason=why)]}
    if action == DiscrepancyAction.CREATE_PENDING:
        rx = _create_pending(task, discrepancy, actor=actor)
        discrepancy.created_prescription = rx
        return {"changes": [{"model": "prescription", "id": rx.pk, "created": True, "status": "pending"}]}
    if action == DiscrepancyAction.REPLACE_PENDING:
        old = _rx_locked(discrepancy)
        held = _set_rx_status(old, "on_hold", actor=actor, reason=why)
        rx = _create_pending(task, discrepancy, actor=actor, like=old)
        discrepancy.created_prescription = rx
        return {"changes": [held, {"model": "prescription", "id": rx.pk, "created": True, "status": "pending"}]}
    if action == DiscrepancyAction.ADD_ALLERGY:
        ehr = discrepancy.ehr_data
        from pharmacy.drug_classes import THERAPEUTIC_CLASSES

        from .compare import _class_from_substance, default_catalog

        catalog = default_catalog()
        drug_class = catalog.drug_class(catalog.ingredient(ehr.get("substance", "")))
        if not drug_class:
            group = _class_from_substance(ehr.get("substance", ""))
            drug_class = {"penicillins": "penicillin", "cephalosporins": "cephalosporin",
                          "sulfonamide_antibiotics": "sulfonamide_antibiotic", "nsaids": "nsaid",
                          "opioids": "opioid_analgesic", "statins": "statin"}.get(group, "")
        rxcui = ehr.get("code", "") if ehr.get("code_system") == "rxnorm" and str(ehr.get("code", "")).isdigit() else ""
        allergy = Allergy(patient=task.patient, substance=(ehr.get("substance") or "")[:200], rxcui=rxcui[:8],
                          drug_class=drug_class if drug_class in THERAPEUTIC_CLASSES else "",
                          reaction=(ehr.get("reaction") or "")[:200],
                          severity=_SEVERITY.get((ehr.get("severity") or "").lower(), "unknown"), source="ehr")
        allergy.full_clean(exclude=["patient"])
        save_with_history(allergy, actor=actor, reason=why[:500])
        discrepancy.created_allergy = allergy
        return {"changes": [{"model": "allergy", "id": allergy.pk, "created": True}]}
    return {"changes": []}


# --------------------------------------------------------------------------------------------
# Outbound FHIR (only after a pharmacist's action, only with consent to exchange)
# --------------------------------------------------------------------------------------------

def _consented_link(patient_id: int) -> EhrLink | None:
    return EhrLink.objects.filter(patient_id=patient_id, consent_to_exchange=True).order_by("-linked_at").first()


def _enqueue_fhir(link: EhrLink, *, kind: str, resource: dict, dedupe_key: str, actor: Actor, related,
                  reason: str):
    from pharmacy.messaging.outbox import outbox_enqueue

    transport = link.outbound_transport if link.outbound_transport in ("file", "http") else "file"
    return outbox_enqueue(kind=kind, payload=json.dumps(resource, ensure_ascii=False), transport=transport,
                          destination=link.outbound_endpoint if transport == "http" else "",
                          content_type="application/fhir+json", dedupe_key=dedupe_key, related=related, actor=actor,
                          reason=reason, message_id=resource["id"])


def _send_summary(task: ReconciliationTask, *, actor: Actor) -> None:
    """FHIR R4 Communication to the primary prescriber: accepted changes and non-adherence."""
    link = _consented_link(task.patient_id)
    if link is None:
        return
    accepted = list(task.discrepancies.filter(status=DiscrepancyStatus.ACCEPTED).order_by("position", "id"))
    lines = [f"- {d.get_kind_display()}: {d.summary}" + (f" (note: {d.note})" if d.note else "") for d in accepted]
    lines += non_adherence_lines(task.patient)
    if not lines:
        return
    from pharmacy.interop.fhir import build_communication

    patient = task.patient
    prescriber = patient.primary_prescriber
    text = (f"Medication reconciliation {task.pk} completed by the pharmacy.\n" + "\n".join(lines))
    resource = build_communication(
        communication_id=f"recon-{task.pk}-{uuid.uuid4().hex[:8]}",
        patient_ref=f"Patient/{link.fhir_patient_id or link.external_id}",
        recipient_ref=f"Practitioner/{prescriber.npi}" if prescriber and prescriber.npi else "",
        text=text,
        sent=timezone.now(),
    )
    _enqueue_fhir(link, kind="fhir:Communication", resource=resource, dedupe_key=f"recon:{task.pk}:summary",
                  actor=actor, related=task, reason=f"Summary of reconciliation task {task.pk} for the prescriber")


def non_adherence_lines(patient: Patient) -> list[str]:
    from pharmacy.models import Fill
    from refills.facts import fill_records
    from refills.supply import pdc

    today = timezone.localdate()
    window = conf("RECON_PDC_WINDOW_DAYS")
    threshold = conf("RECON_PDC_THRESHOLD")
    out = []
    fills_by_rx: dict[int, list] = {}
    for fill in Fill.objects.filter(prescription__patient=patient, prescription__status="active").select_related(
            "prescription__drug").order_by("fill_date"):
        fills_by_rx.setdefault(fill.prescription_id, []).append(fill)
    for fills in fills_by_rx.values():
        value = pdc(fill_records(fills), start=today - timedelta(days=window), end=today)
        if value < threshold:
            out.append(f"- Non-adherence: {fills[0].prescription.drug} PDC {value:.0%} over {window} days "
                       f"(below {threshold:.0%})")
    return out


def dispense_share(*, fill, actor: Actor) -> None:
    """FHIR R4 MedicationDispense for a recorded fill, when the patient's EHR link has consent."""
    rx = fill.prescription
    link = _consented_link(rx.patient_id)
    if link is None:
        return
    from pharmacy.interop.fhir import build_medication_dispense

    handed = fill.picked_up_at or timezone.make_aware(datetime.combine(fill.fill_date, time(12, 0)))
    resource = build_medication_dispense(
        dispense_id=f"fill-{fill.pk}", patient_ref=f"Patient/{link.fhir_patient_id or link.external_id}",
        medication_code=rx.drug.rxcui or (rx.drug.ndc or ""), medication_system="rxnorm" if rx.drug.rxcui else "ndc",
        medication_text=str(rx.drug), quantity=fill.quantity, unit="", days_supply=fill.days_supply,
        when_handed_over=handed, prescription_ref=None, pharmacy_name=fill.pharmacy.name if fill.pharmacy_id else "")
    _enqueue_fhir(link, kind="fhir:MedicationDispense", resource=resource, dedupe_key=f"fill:{fill.pk}:dispense",
                  actor=actor, related=fill, reason=f"Dispense of fill {fill.pk} shared with {link.ehr_system}")


# --------------------------------------------------------------------------------------------
# Allergy check on new prescriptions
# --------------------------------------------------------------------------------------------

def prescription_allergy_check(*, prescription: Prescription, actor: Actor) -> list[AllergyFlag]:
    """Flag a new prescription whose drug conflicts with an active allergy (same ingredient or a
    cross-sensitive class). Returns the flags raised."""
    allergies = list(Allergy.objects.filter(patient_id=prescription.patient_id, status="active"))
    if not allergies:
        return []
    drug = prescription.drug
    hits = compare.drug_allergy_conflicts(drug_name=drug.name, drug_class=drug.therapeutic_class, rxcui=drug.rxcui,
                                          allergies=[facts.pharmacy_allergy(a) for a in allergies])
    flags = []
    by_id = {a.pk: a for a in allergies}
    for entry, reason in hits:
        flag, created = AllergyFlag.objects.get_or_create(
            prescription=prescription, allergy=by_id[entry.id], defaults={"reason": reason[:300]})
        if created:
            flags.append(flag)
    return flags


# --------------------------------------------------------------------------------------------
# Pulling from the EHR's FHIR endpoint
# --------------------------------------------------------------------------------------------

def pull_ehr_record(*, patient_id: int, actor: Actor) -> InboundMessage:
    """GET active MedicationRequest, AllergyIntolerance and Condition for a linked patient (FHIR R4
    search, US Core), with a timeout and retries; the answers are stored as one Bundle and processed."""
    import urllib.error
    import urllib.parse
    import urllib.request

    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="pull an EHR record")
    link = (EhrLink.objects.filter(patient_id=patient_id).exclude(fhir_base_url="").order_by("-linked_at").first())
    if link is None:
        raise DomainError("This patient has no EHR link with a FHIR endpoint.", code="no_ehr_link")
    base = link.fhir_base_url.rstrip("/")
    pid = urllib.parse.quote(link.fhir_patient_id or link.external_id)
    queries = [f"MedicationRequest?patient={pid}&status=active&intent=order,plan",
               f"AllergyIntolerance?patient={pid}&clinical-status=active", f"Condition?patient={pid}"]
    entries: list[dict] = []
    attempts, timeout = conf("RECON_PULL_ATTEMPTS"), conf("RECON_PULL_TIMEOUT_SECONDS")
    for query in queries:
        last_error = ""
        for _ in range(attempts):
            request = urllib.request.Request(f"{base}/{query}", headers={"Accept": "application/fhir+json"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured endpoint)
                    bundle = json.loads(response.read(10_000_000).decode("utf-8"))
                entries.extend(e for e in bundle.get("entry", []) if isinstance(e, dict))
                last_error = ""
                break
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code} from {base}/{query.split('?')[0]}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                last_error = f"{base}/{query.split('?')[0]}: {exc}"
        if last_error:
            raise DomainError(f"Could not read the EHR record: {last_error}", code="ehr_unreachable")
    bundle = {"resourceType": "Bundle", "id": f"pull-{uuid.uuid4().hex[:16]}", "type": "collection",
              "meta": {"source": link.ehr_system}, "timestamp": timezone.now().isoformat(), "entry": entries}
    message = inbound_receive(channel=choices.Channel.PULL, payload=json.dumps(bundle),
                              content_type="application/fhir+json", source_name=base)
    record_event(kind="reconciliation.ehr_pulled", actor=actor, subject=message, patient_id=patient_id,
                 summary=f"EHR record pulled from {link.ehr_system} ({len(entries)} entries)")
    return inbound_process(message_id=message.pk, patient=Patient.objects.get(pk=patient_id))
