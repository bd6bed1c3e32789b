"""Inbound EHR messages: store first (receive), then process (read, match, store labs and problems,
open tasks), ingest (receive + process + acknowledge), retry and match resolution.

Inbound is store first, then process (DESIGN.md): ``inbound_receive`` commits the raw payload in
its own transaction; ``inbound_process`` reads, matches and writes in a second one; a failure
rolls that one back and marks the stored message failed with its error, for retry."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy import workflow
from pharmacy.actors import Actor, actor_user, bulk_create_recorded, save_with_history
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
from pharmacy.interop.detect import detect_format, format_mismatch, read_clinical
from pharmacy.models import Diagnosis, LabResult, Patient
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, TECHNICIAN, require_role
from pharmacy.validators import icd10cm_is_valid, loinc_is_valid, normalize_icd10cm

from .. import choices
from ..choices import (
    InboundStatus,
    MatchItemStatus,
    MatchOutcome,
)
from ..conf import conf
from ..matching import MatchResult, patient_match
from ..models import InboundMessage, PatientMatchItem
from ._common import INBOUND, _sys, _system_users
from .matching import _ensure_link, _open_match_item
from .tasks import _open_task

# HL7 v2.5.1 message types this app processes (Ch. 3 ADT, Ch. 4 RDE/RDS/ORM/OMP — RDE^O25 is the
# pharmacy/treatment refill authorization request, v2.5 Ch. 4A event O25 — Ch. 7 ORU);
# anything else is stored and marked unsupported, never dropped.
SUPPORTED_HL7 = {"ADT^A01", "ADT^A03", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "RDE^O11", "RDE^O25",
                 "RDS^O13", "ORM^O01", "OMP^O09", "ORU^R01"}


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
    error = format_mismatch(channel, kept) or error  # FHIR to /hl7/, NCPDP to /documents/: refused plainly
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


def _move_message(message: InboundMessage, target: str, *, reason: str, fields: tuple[str, ...] = ()) -> None:
    workflow.move(message, target, transitions=choices.INBOUND_TRANSITIONS, label="inbound message",
                  actor=_sys(INBOUND), reason=reason, fields=fields, max_reason=500)


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


def _aware(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(12, 0))
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _store_labs(patient: Patient, record: ClinicalRecord, message: InboundMessage) -> int:
    """ORU/OBX and C-CDA/FHIR results with a LOINC code → LabResult rows (used by refill protocols).

    Set-based: one read of the patient's (code, time) pairs on file, then the new rows and their
    history rows in batches (``bulk_create_recorded``: history type "+", the inbound system user,
    the same change reason as a single save) — not one save and one history row per OBX. A result
    already on file, or repeated in the message, is stored once (the first one wins)."""
    seen = set(LabResult.objects.filter(patient=patient).values_list("loinc_code", "collected_at"))
    rows = []
    for lab in record.lab_results:
        if lab.code_system != "loinc" or not lab.code or lab.value in ("", None):
            continue
        if not loinc_is_valid(lab.code):
            continue
        collected = _aware(lab.observed_at) or message.received_at
        key = (lab.code, collected)
        if key in seen:
            continue
        seen.add(key)
        flag = (lab.abnormal_flag or "").upper()
        flag = flag if flag in {"N", "L", "H", "LL", "HH", "A"} else ""
        rows.append(LabResult(
            patient=patient, loinc_code=lab.code, name=(lab.name or lab.code)[:200], value=str(lab.value)[:64],
            unit=(lab.unit or "")[:32], reference_range=(lab.reference_range or "")[:64], abnormal_flag=flag,
            collected_at=collected, source="ehr"))
    if rows:
        bulk_create_recorded(LabResult, rows, actor=_sys(INBOUND), reason=f"From inbound message {message.pk}")
    return len(rows)


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


def match_item_create_patient(*, item_id: int, actor: Actor) -> PatientMatchItem:
    """No existing patient is the one in the message: a person creates the patient from the message's
    name, birth date and sex (a new MRN), then the item is resolved to it like any choice."""
    from datetime import date

    from pharmacy.services import patient_create

    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="create a patient from a message")
    with transaction.atomic():
        item = PatientMatchItem.objects.select_for_update().get(pk=item_id)
        if item.status != MatchItemStatus.OPEN:
            raise TransitionNotAllowed(model="patient match", current=item.status, target=MatchItemStatus.RESOLVED)
        data = item.patient_data or {}
        if not (data.get("family") and data.get("given") and data.get("birth_date")):
            raise DomainError("The message lacks a name or birth date; search for the patient instead.",
                              code="incomplete_patient")
        patient = patient_create(actor=actor, reason=f"Created from inbound message {item.inbound_message_id}",
                                 first_name=str(data["given"]).split(" ")[0][:100], last_name=str(data["family"])[:100],
                                 birth_date=date.fromisoformat(str(data["birth_date"])[:10]),
                                 sex=str(data.get("sex") or "U"))
    return match_item_resolve(item_id=item_id, patient_id=patient.pk, actor=actor)
