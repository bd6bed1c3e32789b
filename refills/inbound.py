"""Inbound NCPDP SCRIPT from pharmacies (``POST /api/v1/ncpdp/``), store first, then process.

1. The raw body is saved (``InboundNcpdpMessage``, status received) in its own transaction before
   anything reads it — a message we cannot take is still on file with its error.
2. It is parsed with the hardened codec (defusedxml: no DTD, entities or external references;
   size-capped at ``RXHUB["MAX_INBOUND_BYTES"]``). A refused message is answered with an NCPDP
   Error and changes nothing else.
3. The sending pharmacy (Header/From NCPDP ID) must be bound to the posting account
   (``Pharmacy.integrator_users``; admins excepted); otherwise the answer is an Error 900 with HTTP
   403, the message stays on file as failed, an ``ncpdp.sender_refused`` audit event is recorded
   and nothing else changes.
4. It is deduplicated by the core pipeline (pharmacy/inbound.py) on sender, MessageID and payload
   SHA-256: a message already processed is answered again with the first answer (status
   duplicate) and changes nothing; a resend of one that was refused or failed processes the
   original again and answers with that; the same MessageID with other content is processed as
   its own message, flagged ``control_id_reused``. Processing runs in one transaction that first
   claims (sender, MessageID, content): a concurrent twin fails on the partial unique constraint,
   its work rolls back, and it gets the first answer too.

Transactions handled:

* ``NewRx`` from a prescriber's system → a new prescription, or a patient-match item for a person,
  and a renewal waiting for a new prescription is closed (refills/new_rx.py);
* ``RxRenewalRequest`` → a refill request (source pharmacy) through ``refill_request_open``;
* ``RxFill`` (Dispensed / PartiallyDispensed / NotDispensed) → ``refill_request_record_fill``,
  found by RelatesToMessageID (our authorization) or by the pharmacy's Rx number;
* ``CancelRxResponse`` → the answer to the CancelRx sent by ``prescription_change_pharmacy``,
  recorded on the prescription's history, in the audit chain and on this row (``answers_outbox``);
* ``Status`` / ``Error`` / ``Verify`` about a message we sent → recorded against it.

Answers: NCPDP Status 010 (HTTP 200) or Error — 900 transaction rejected (HTTP 400; the
description names the element or the record that did not match; HTTP 403 when the sender is not
bound to the posting account), 601 unable to process (HTTP 400,
or 413 when oversize; status rejected), 602 our own failure (HTTP 503; the message is kept as
failed, retried with backoff by the ``rxhub:inbound-sweep`` schedule, and a resend is processed
again).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import save_with_history, system_actor
from pharmacy.errors import DomainError
from pharmacy.inbound import REPROCESSABLE, InboundPipeline, clean_text, next_attempt_at, payload_sha256, store
from pharmacy.interop import ncpdp
from pharmacy.interop.ncpdp import ScriptError
from pharmacy.models import OutboxMessage, Patient, Pharmacy, Prescription
from pharmacy.roles import ADMIN, has_role
from pharmacy.validators import normalize_ndc

from . import services
from .choices import APPROVED_STATUSES, InboundStatus, RefillStatus, RequestKind, RequestSource
from .dispatch import CLINIC_ID
from .models import InboundNcpdpMessage, RefillRequest
from .new_rx import new_rx_receive

log = logging.getLogger(__name__)

ACTOR = system_actor("system:ncpdp-inbound")
STORED_PREFIX_BYTES = 64 * 1024  # what is kept of an oversize body
HTTP_FOR_ERROR = {"900": 400, "601": 400, "602": 503, "600": 400, "700": 400}
ACKNOWLEDGEMENTS = ("Status", "Error", "Verify")


@dataclass(frozen=True)
class InboundAnswer:
    xml: str
    http_status: int
    message: InboundNcpdpMessage


def _reject(element: str, problem: str) -> ScriptError:
    return ScriptError(ncpdp.ERROR_TRANSACTION_REJECTED, f"{element}: {problem}", element=element)


# --- entry point ------------------------------------------------------------------------------

class NcpdpPipeline(InboundPipeline):
    """NCPDP SCRIPT in the core inbound pipeline: the control ID is Header/MessageID."""

    name = "ncpdp"
    model = InboundNcpdpMessage
    control_field = "message_id"

    def process(self, message_id: int) -> InboundAnswer:
        return ncpdp_inbound_process(message_id=message_id)


PIPELINE = NcpdpPipeline()


def ncpdp_inbound_receive(*, body: bytes, user, size: int | None = None, request=None) -> InboundAnswer:
    """Store, parse, dedupe, process and answer one inbound message. ``body`` may be cut short by
    the caller at ``MAX_INBOUND_BYTES + 1`` bytes; ``size`` is the declared size when known;
    ``request`` (optional) gives the client address for the audit event of a refused sender."""
    limit = int(settings.RXHUB["MAX_INBOUND_BYTES"])
    size = max(size or 0, len(body))
    row = _store(body, size=size, oversize=size > limit, user=user)
    if size > limit:
        exc = ScriptError(ncpdp.ERROR_UNABLE_TO_PROCESS, f"Message: {size} bytes exceeds the {limit}-byte limit",
                          element="Message")
        return _fail(row, exc, _salvaged_reply_header(body), http_status=413)
    return _handle(row, body=body, user=user, request=request, dedupe=True)


def ncpdp_inbound_process(*, message_id: int) -> InboundAnswer:
    """Process a stored message again from its payload (the sweep of rows left received, retries
    of failed ones, a resend of a message not yet processed). A settled one is answered as then."""
    row = InboundNcpdpMessage.objects.select_related("received_by").get(pk=message_id)
    if row.status not in REPROCESSABLE:
        return InboundAnswer(xml=row.answer, http_status=row.http_status, message=row)
    if row.payload_truncated:
        return InboundAnswer(xml=row.answer, http_status=row.http_status, message=row)
    return _handle(row, body=row.payload.encode("utf-8"), user=row.received_by, request=None, dedupe=False)


def _handle(row: InboundNcpdpMessage, *, body: bytes, user, request, dedupe: bool) -> InboundAnswer:
    limit = int(settings.RXHUB["MAX_INBOUND_BYTES"])
    try:
        parsed = ncpdp.parse_message(body, max_bytes=limit)
    except ScriptError as exc:
        return _fail(row, exc, _salvaged_reply_header(body))
    except (ValueError, LookupError, RecursionError, MemoryError) as exc:  # hostile input the codec let through
        return _fail(row, _reject("Message", f"unreadable: {type(exc).__name__}: {exc}"[:300]),
                     _salvaged_reply_header(body))

    if parsed.schema_errors:  # NCPDP_XSD_DIR set: the sender's message is not schema-valid; read it tolerantly
        log.warning("NCPDP inbound %s (%s %s): %d schema error(s), first: %s", row.pk, parsed.transaction,
                    parsed.message_id[:35], len(parsed.schema_errors), parsed.schema_errors[0][:200])
    header = ncpdp.reply_header(parsed)
    with transaction.atomic():
        row = InboundNcpdpMessage.objects.select_for_update().get(pk=row.pk)
        row.sender = clean_text(f"{parsed.from_.qualifier}:{parsed.from_.id}")[:64]
        row.message_id = clean_text(parsed.message_id)[:35]
        row.relates_to_message_id = clean_text(parsed.relates_to_message_id)[:35]
        row.transaction = clean_text(parsed.transaction)[:32]
        save_with_history(row, actor=ACTOR, reason=f"Parsed {row.transaction}",
                          update_fields=["sender", "message_id", "relates_to_message_id", "transaction"])
    refusal = _sender_refusal(parsed, user)
    if refusal is not None:  # before the duplicate check: no replaying another pharmacy's answers either
        return _refuse_sender(row, parsed, refusal, header, user=user, request=request)
    if dedupe:
        decision = PIPELINE.decide(sender=row.sender, control_id=row.message_id, sha256=row.payload_sha256,
                                   before_id=row.pk)
        if decision.kind == "duplicate":
            return _duplicate(row, InboundNcpdpMessage.objects.get(pk=decision.original_id))
        if decision.kind == "reprocess":  # the original was never processed: process it, answer with that
            answer = ncpdp_inbound_process(message_id=decision.original_id)
            return _duplicate(row, answer.message)
        if decision.control_id_reused:
            row.control_id_reused = True
            save_with_history(row, actor=ACTOR, reason=f"MessageID {row.message_id} reused with other content",
                              update_fields=["control_id_reused"])
    try:
        return _process(row, parsed, header)
    except IntegrityError:
        original = _processed_original(row)
        if original is not None:  # a concurrent twin won; ours rolled back
            return _duplicate(row, original)
        log.exception("NCPDP inbound %s: integrity error", row.pk)
        return _fail(row, ScriptError("602", "Receiver system error (conflicting data); resend later"), header)
    except ScriptError as exc:
        return _fail(row, exc, header)
    except (DomainError, ValidationError) as exc:
        return _fail(row, _reject(f"Body/{parsed.transaction}", _describe(exc)), header)
    except (OperationalError, InterfaceError):
        raise  # the database is away: the view answers 503 (Error 602) and the sender resends
    except Exception:  # noqa: BLE001 — the message is kept and answered; a resend is processed again
        log.exception("NCPDP inbound %s failed", row.pk)
        return _fail(row, ScriptError("602", "Receiver system error; the message is kept, resend later"), header)


def _sender_ncpdp_id(parsed: ncpdp.ScriptMessage) -> str:
    """The sending pharmacy's NCPDP ID as ``_sending_pharmacy`` resolves it: Header/From (Qualifier
    P), else the body's Pharmacy (a mismatch between the two is refused there)."""
    if parsed.from_.qualifier == "P" and parsed.from_.id:
        return parsed.from_.id
    return parsed.pharmacy.ncpdp_id if parsed.pharmacy else ""


def _sender_refusal(parsed: ncpdp.ScriptMessage, user) -> ScriptError | None:
    """Why ``user`` may not post this message as its sending pharmacy, or None when it may.

    One integrator account must not be able to report fills, ask for renewals or answer
    cancellations in the name of any pharmacy it likes: an account speaks only for the pharmacies
    bound to it (``Pharmacy.integrator_users``). The refusal names the NCPDP ID only (no PHI) and
    does not say whether that pharmacy is known here."""
    # Admin-role accounts may post as any pharmacy: they manage the bindings themselves, so binding
    # them would protect nothing.
    if has_role(user, ADMIN):
        return None
    ncpdp_id = _sender_ncpdp_id(parsed)
    if not ncpdp_id:
        return _reject("Header/From", "no sending pharmacy NCPDP ID; this API account may post only for the "
                                      "pharmacies bound to it")
    if getattr(user, "is_authenticated", False) and Pharmacy.objects.filter(
            ncpdp_id=ncpdp_id, integrator_users=user).exists():
        return None
    return _reject("Header/From", f"sender NCPDP ID {ncpdp_id} is not authorised for this API account")


def _refuse_sender(row: InboundNcpdpMessage, parsed: ncpdp.ScriptMessage, exc: ScriptError,
                   header: ncpdp.Header, *, user, request) -> InboundAnswer:
    with transaction.atomic():
        answer = _fail(row, exc, header, http_status=403)
        authenticated = getattr(user, "is_authenticated", False)
        record_event(kind="ncpdp.sender_refused", actor=user if authenticated else None, subject=answer.message,
                     summary=f"Inbound NCPDP {parsed.transaction} refused: {exc.description}",
                     data={"sender": answer.message.sender, "message_id": parsed.message_id,
                           "transaction": parsed.transaction, "inbound_message": answer.message.pk},
                     request=request)
    return answer


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _store(body: bytes, *, size: int, oversize: bool, user) -> InboundNcpdpMessage:
    kept = body[:STORED_PREFIX_BYTES] if oversize else body
    row = InboundNcpdpMessage(
        received_by=user if getattr(user, "is_authenticated", False) else None,
        payload=clean_text(kept.decode("utf-8", "replace")),
        size_bytes=size, payload_truncated=len(kept) < size, payload_sha256=payload_sha256(kept),
    )
    return store(row, actor=ACTOR, reason="Stored as received")


def _processed_original(row: InboundNcpdpMessage) -> InboundNcpdpMessage | None:
    if not row.message_id:
        return None
    return (InboundNcpdpMessage.objects.filter(sender=row.sender, message_id=row.message_id,
                                               payload_sha256=row.payload_sha256,
                                               status=InboundStatus.PROCESSED).exclude(pk=row.pk).first())


def _finish(row: InboundNcpdpMessage, *, status: str, answer: str, http_status: int, reason: str,
            **fields) -> InboundNcpdpMessage:
    row.status, row.answer, row.http_status, row.processed_at = status, answer, http_status, timezone.now()
    for name, value in fields.items():
        setattr(row, name, value)
    save_with_history(row, actor=ACTOR, reason=reason[:500],
                      update_fields=["status", "answer", "http_status", "processed_at", *fields])
    return row


def _fail(row: InboundNcpdpMessage, exc: ScriptError, header: ncpdp.Header, *,
          http_status: int | None = None) -> InboundAnswer:
    """Answer with an NCPDP Error. 602 (our own failure) leaves the message failed and retried with
    backoff; any other code refused it (rejected: kept with its error, a resend is read again)."""
    code = exc.code if exc.code in ncpdp.ERROR_CODES else "900"
    description = clean_text(exc.description)
    xml = ncpdp.build_error(header=header, code=code, description_code=exc.description_code,
                            description=description[:500])
    status = http_status or HTTP_FOR_ERROR.get(code, 400)
    now = timezone.now()
    with transaction.atomic():
        row = InboundNcpdpMessage.objects.select_for_update().get(pk=row.pk)
        attempts = row.attempts + 1
        failed = code == "602"
        _finish(row, status=InboundStatus.FAILED if failed else InboundStatus.REJECTED, answer=xml,
                http_status=status, reason=f"Refused with Error {code}: {description}", error_code=code,
                error=description, result="", attempts=attempts,
                next_attempt_at=next_attempt_at(attempts, now) if failed else None)
    return InboundAnswer(xml=xml, http_status=status, message=row)


def _duplicate(row: InboundNcpdpMessage, original: InboundNcpdpMessage) -> InboundAnswer:
    with transaction.atomic():
        row = InboundNcpdpMessage.objects.select_for_update().get(pk=row.pk)
        _finish(row, status=InboundStatus.DUPLICATE, answer=original.answer, http_status=original.http_status,
                reason=f"Duplicate of inbound message {original.pk}; answered as then", duplicate_of=original,
                refill_request=original.refill_request, result=f"Duplicate of #{original.pk}")
    return InboundAnswer(xml=original.answer, http_status=original.http_status, message=row)


def _process(row: InboundNcpdpMessage, parsed: ncpdp.ScriptMessage, header: ncpdp.Header) -> InboundAnswer:
    handler = HANDLERS.get(parsed.transaction)
    if handler is None:
        raise ScriptError(ncpdp.ERROR_UNABLE_TO_PROCESS,
                          f"Body/{parsed.transaction}: this receiver does not process {parsed.transaction}",
                          element=f"Body/{parsed.transaction}")
    with transaction.atomic():
        row = InboundNcpdpMessage.objects.select_for_update().get(pk=row.pk)
        if row.status not in REPROCESSABLE:  # processed meanwhile (a sweep, a resend)
            return InboundAnswer(xml=row.answer, http_status=row.http_status, message=row)
        # Claim (sender, MessageID, content) first: a concurrent twin blocks here, then fails.
        row.status = InboundStatus.PROCESSED
        save_with_history(row, actor=ACTOR, reason=f"Processing {parsed.transaction} {parsed.message_id}",
                          update_fields=["status"])
        result = handler(parsed, row)
        xml = ncpdp.build_status(header=header, code="010", description=result.summary[:70])
        _finish(row, status=InboundStatus.PROCESSED, answer=xml, http_status=200, reason=result.summary,
                result=result.summary[:200], refill_request=result.request, answers_outbox=result.outbox,
                error_code="", error="", attempts=row.attempts + 1, next_attempt_at=None)
    return InboundAnswer(xml=xml, http_status=200, message=row)


@dataclass
class _Result:
    summary: str
    request: RefillRequest | None = None
    outbox: OutboxMessage | None = None


# --- salvage for answers to unreadable messages --------------------------------------------------

_MESSAGE_ID = re.compile(r"<(?:[\w.-]+:)?MessageID\s*>\s*([^<>&\s]{1,35})\s*</")
_FROM = re.compile(r"<(?:[\w.-]+:)?From\b[^<>]*?Qualifier\s*=\s*[\"']([A-Z]{1,3})[\"'][^<>]*>\s*([^<>&\s]{1,35})\s*</")


def _salvaged_reply_header(body: bytes) -> ncpdp.Header:
    """Header for an Error to a message the parser refused: MessageID and From are picked out of
    the first bytes with plain patterns (no XML parsing, so nothing in it is expanded)."""
    text = body[:STORED_PREFIX_BYTES].decode("utf-8", "replace")
    mid = _MESSAGE_ID.search(text)
    frm = _FROM.search(text)
    to = ncpdp.Party("ZZZ", "UNKNOWN")
    if frm and frm.group(1) in ncpdp.PARTY_QUALIFIERS:
        to = ncpdp.Party(frm.group(1), frm.group(2))
    relates = mid.group(1) if mid else "UNKNOWN"
    try:
        return ncpdp.Header(to=to, from_=ncpdp.Party("C", CLINIC_ID), message_id=ncpdp.new_message_id(),
                            relates_to_message_id=relates)
    except ValueError:
        return ncpdp.Header(to=ncpdp.Party("ZZZ", "UNKNOWN"), from_=ncpdp.Party("C", CLINIC_ID),
                            message_id=ncpdp.new_message_id(), relates_to_message_id="UNKNOWN")


# --- matching -------------------------------------------------------------------------------------

def _sending_pharmacy(parsed: ncpdp.ScriptMessage) -> Pharmacy:
    header_id = parsed.from_.id if parsed.from_.qualifier == "P" else ""
    body_id = parsed.pharmacy.ncpdp_id if parsed.pharmacy else ""
    where = f"Body/{parsed.transaction}/Pharmacy/Identification/NCPDPID"
    if header_id and body_id and header_id != body_id:
        raise _reject(where, f"{body_id} is not the sender in Header/From ({header_id})")
    ncpdp_id = header_id or body_id
    if not ncpdp_id:
        raise _reject("Header/From", "a pharmacy must send this message (Qualifier P with its NCPDP ID)")
    pharmacy = Pharmacy.objects.filter(ncpdp_id=ncpdp_id).first()
    if pharmacy is None:
        raise _reject("Header/From" if header_id else where, f"pharmacy NCPDP ID {ncpdp_id} is not known here")
    return pharmacy


def _rx_from_order_number(order: str) -> Prescription | None:
    m = re.fullmatch(r"RR(\d{1,18})", order or "")
    if not m:
        return None
    req = RefillRequest.objects.select_related("prescription").filter(pk=int(m.group(1))).first()
    return req.prescription if req else None


def _patient_matches(rx: Prescription, info: ncpdp.PatientInfo | None) -> bool:
    if info is None or not info.last_name:
        return True
    p = rx.patient
    if p.last_name.casefold() != info.last_name.casefold():
        return False
    return not (info.birth_date and p.birth_date != info.birth_date)


def _medication_matches(rx: Prescription, med: ncpdp.MedicationInfo) -> bool:
    drug = rx.drug
    if med.ndc:
        try:
            if drug.ndc and normalize_ndc(med.ndc) == drug.ndc:
                return True
        except ValidationError:
            pass
    text = (med.description or "").casefold()
    names = [drug.name, *(drug.brand_names or [])]
    return bool(text) and any(name and name.casefold() in text for name in names)


def _match_prescription(parsed: ncpdp.ScriptMessage, pharmacy: Pharmacy) -> Prescription:
    """The prescription the pharmacy means: its Rx number (RxReferenceNumber), our order number
    (PrescriberOrderNumber RR<request id>), else the patient (name, date of birth) and the drug
    (NDC or name) among that patient's active prescriptions. Errors name what did not match."""
    tx = f"Body/{parsed.transaction}"
    by_order = _rx_from_order_number(parsed.prescriber_order_number)
    if by_order is not None:
        if not _patient_matches(by_order, parsed.patient):
            raise _reject(f"{tx}/Patient", "does not match the patient of PrescriberOrderNumber "
                                           f"{parsed.prescriber_order_number}")
        return by_order
    ref = parsed.rx_reference_number
    if ref:
        found = list(Prescription.objects.select_related("patient", "drug")
                     .filter(rx_number=ref, pharmacy=pharmacy)[:2])
        if not found:
            found = list(Prescription.objects.select_related("patient", "drug").filter(rx_number=ref)[:2])
        found = [rx for rx in found if _patient_matches(rx, parsed.patient)]
        if len(found) == 1:
            return found[0]
    info = parsed.patient
    if info is None or not info.last_name:
        raise _reject("Header/RxReferenceNumber" if ref else f"{tx}/Patient",
                      f"Rx number {ref} matches no prescription here and no patient is given" if ref
                      else "missing (and no RxReferenceNumber)")
    patients = Patient.objects.filter(last_name__iexact=info.last_name)
    if info.first_name:
        patients = patients.filter(first_name__iexact=info.first_name)
    if info.birth_date:
        patients = patients.filter(birth_date=info.birth_date)
    if info.is_animal and info.owner_last_name:
        patients = patients.filter(owner_last_name__iexact=info.owner_last_name)
    patient_ids = list(patients.values_list("pk", flat=True)[:5])
    prefix = f"Rx number {ref} matches no prescription here; " if ref else ""
    if not patient_ids:
        raise _reject(f"{tx}/Patient", f"{prefix}no patient here with this name and date of birth")
    med = parsed.medication_prescribed or parsed.medication_dispensed
    if med is None:
        raise _reject(f"{tx}/MedicationPrescribed", f"{prefix}missing")
    active = Prescription.objects.select_related("drug", "patient").filter(patient_id__in=patient_ids,
                                                                            status="active")
    hits = [rx for rx in active if _medication_matches(rx, med)]
    if not hits:
        raise _reject(f"{tx}/MedicationPrescribed/DrugDescription",
                      f"{prefix}{med.description or med.ndc!r} matches none of the patient's active prescriptions")
    if len(hits) > 1:
        raise _reject(f"{tx}/MedicationPrescribed/DrugDescription",
                      f"{prefix}matches {len(hits)} active prescriptions; send the RxReferenceNumber")
    return hits[0]


# --- handlers -------------------------------------------------------------------------------------

def _renewal_request(parsed: ncpdp.ScriptMessage, row: InboundNcpdpMessage) -> _Result:
    pharmacy = _sending_pharmacy(parsed)
    rx = _match_prescription(parsed, pharmacy)
    if rx.pharmacy_id != pharmacy.pk:
        raise _reject("Header/RxReferenceNumber", f"prescription {rx.rx_number or rx.pk} is not routed to "
                                                  f"pharmacy {pharmacy.ncpdp_id}")
    try:
        req = services.refill_request_open(
            prescription=rx, actor=ACTOR, source=RequestSource.PHARMACY, kind=RequestKind.RENEWAL,
            reason=f"NCPDP RxRenewalRequest {parsed.message_id} from {pharmacy.name}",
            pharmacy_message_id=parsed.message_id, pharmacy_requested_refills=parsed.requested_refills)
    except DomainError as exc:
        if exc.code == "duplicate_open_request":
            raise _reject("Header/RxReferenceNumber", f"prescription {rx.rx_number or rx.pk} already has an "
                                                      "open refill request; wait for its answer") from exc
        raise
    return _Result(summary=f"Renewal request {req.pk} opened ({req.status})", request=req)


def _authorization_for(parsed: ncpdp.ScriptMessage, pharmacy: Pharmacy) -> RefillRequest:
    relates = parsed.relates_to_message_id
    req = RefillRequest.objects.filter(outbound_message_id=relates).first() if relates else None
    if req is None:
        try:
            rx = _match_prescription(parsed, pharmacy)
        except ScriptError:
            rx = None
        waiting = (RefillStatus.SENT_TO_PHARMACY, RefillStatus.PARTIALLY_FILLED, *APPROVED_STATUSES)
        if rx is not None:
            req = rx.refill_requests.filter(status__in=waiting).order_by("-created_at").first()
        if req is None:
            raise _reject("Header/RelatesToMessageID", f"{relates} is not an authorization we sent, and no "
                                                        "authorized request matches the prescription")
    return req


def _fill(parsed: ncpdp.ScriptMessage, row: InboundNcpdpMessage) -> _Result:
    pharmacy = _sending_pharmacy(parsed)
    if parsed.fill_status not in services.FILL_OUTCOMES:
        raise ScriptError(ncpdp.ERROR_UNABLE_TO_PROCESS,
                          f"Body/RxFill/FillStatus/{parsed.fill_status}: not processed here; call the prescriber",
                          element="Body/RxFill/FillStatus")
    req = _authorization_for(parsed, pharmacy)
    routed_to = req.pharmacy_id or req.prescription.pharmacy_id
    if routed_to != pharmacy.pk:
        # After a pharmacy change only the new pharmacy may report fills (no state lets both dispense).
        raise _reject("Header/From", f"pharmacy {pharmacy.ncpdp_id} is not the one this authorization went to")
    if req.status in APPROVED_STATUSES and req.outbound_message_id:
        # The pharmacy reports a fill, so it has the authorization even if delivery is not confirmed yet.
        sent = OutboxMessage.objects.filter(message_id=req.outbound_message_id).first()
        if sent is not None:
            services.on_authorization_delivered(sent)
    med = parsed.medication_dispensed
    note = " ".join(
        part
        for part in (
            f"Reason {parsed.fill_reason_code} "
            f"({ncpdp.NOT_DISPENSED_REASON_CODES.get(parsed.fill_reason_code, 'see code list')})"
            if parsed.fill_reason_code
            else "",
            parsed.fill_note,
        )
        if part
    )
    req = services.refill_request_record_fill(
        request_id=req.pk, actor=ACTOR, fill_status=parsed.fill_status,
        fill_date=(med.last_fill_date if med and med.last_fill_date else timezone.localdate(parsed.sent_time)),
        quantity=med.quantity if med else None, days_supply=med.days_supply if med else None,
        reference=parsed.message_id, note=note)
    return _Result(summary=f"Request {req.pk}: {parsed.fill_status}", request=req)


def _cancel_response(parsed: ncpdp.ScriptMessage, row: InboundNcpdpMessage) -> _Result:
    pharmacy = _sending_pharmacy(parsed)
    relates = parsed.relates_to_message_id
    cancel = OutboxMessage.objects.filter(message_id=relates, kind="ncpdp:CancelRx").first()
    if cancel is None:
        raise _reject("Header/RelatesToMessageID", f"{relates} is not a CancelRx we sent")
    if ncpdp.parse_message(cancel.payload).to.id != pharmacy.ncpdp_id:
        raise _reject("Header/From", f"CancelRx {relates} was not sent to pharmacy {pharmacy.ncpdp_id}")
    # Only an earlier CancelRxResponse answers it; a Status/Verify acknowledging receipt does not.
    if (InboundNcpdpMessage.objects.filter(answers_outbox=cancel, status=InboundStatus.PROCESSED,
                                           transaction="CancelRxResponse").exclude(pk=row.pk).exists()):
        raise _reject("Header/RelatesToMessageID", f"CancelRx {relates} was already answered")
    rx = (Prescription.objects.select_for_update().filter(pk=cancel.related_id).first()
          if cancel.related_model == "pharmacy.prescription" else None)
    response = parsed.response
    approved = response.kind == "Approved"
    why = "; ".join(filter(None, [", ".join(response.reason_codes), response.denial_reason, response.note]))
    summary = (f"{pharmacy.name} confirmed the cancellation (CancelRx {relates})" if approved else
               f"{pharmacy.name} refused the cancellation (CancelRx {relates}){': ' + why if why else ''}")
    if rx is not None:
        save_with_history(rx, actor=ACTOR, reason=summary[:500], update_fields=[])
    record_event(kind="ncpdp.cancel_rx_" + ("approved" if approved else "denied"), actor=ACTOR,
                 subject=rx or cancel, patient_id=rx.patient_id if rx else None, summary=summary,
                 data={"pharmacy": pharmacy.ncpdp_id, "cancel_message_id": relates,
                       "response_message_id": parsed.message_id, "reason_codes": response.reason_codes})
    return _Result(summary=("CancelRx approved" if approved else "CancelRx denied") + f" by {pharmacy.ncpdp_id}",
                   outbox=cancel)


def _acknowledgement(parsed: ncpdp.ScriptMessage, row: InboundNcpdpMessage) -> _Result:
    """A pharmacy's Status / Error / Verify about a message we sent: kept against that message."""
    ours = OutboxMessage.objects.filter(message_id=parsed.relates_to_message_id).first()
    if ours is None:
        raise _reject("Header/RelatesToMessageID", f"{parsed.relates_to_message_id} is not a message we sent")
    detail = parsed.error_description or parsed.status_description
    code = parsed.error_code or parsed.status_code
    return _Result(summary=f"{parsed.transaction} {code} for {ours.kind} {ours.message_id}"
                           f"{': ' + detail if detail else ''}", outbox=ours)


def _new_rx(parsed: ncpdp.ScriptMessage, row: InboundNcpdpMessage) -> _Result:
    """NewRx from a prescriber's system: refills/new_rx.py (prescription or patient-match item)."""
    outcome = new_rx_receive(parsed, row)
    return _Result(summary=outcome.summary, request=outcome.request)


HANDLERS = {
    "NewRx": _new_rx,
    "RxRenewalRequest": _renewal_request,
    "RxFill": _fill,
    "CancelRxResponse": _cancel_response,
    **{name: _acknowledgement for name in ACKNOWLEDGEMENTS},
}


def inbound_list(*, user=None):
    """Inbound messages, newest first. An integrator sees what its account posted and what the
    pharmacies bound to it sent (not other trading partners' traffic); admins see everything."""
    qs = InboundNcpdpMessage.objects.select_related("refill_request").order_by("-received_at", "-id")
    if user is not None and not has_role(user, ADMIN):
        bound = [f"P:{ncpdp_id}" for ncpdp_id in
                 Pharmacy.objects.filter(integrator_users=user).values_list("ncpdp_id", flat=True)]
        qs = qs.filter(Q(received_by=user) | Q(sender__in=bound))
    return qs
