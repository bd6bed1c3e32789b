"""SCRIPT 2017071 reader: a message into plain data (:class:`ScriptMessage`), or :class:`ScriptError`.

Tolerant of position and namespace: elements are looked up by *local name*, so a message with or
without an XML namespace reads the same (the version check in :mod:`..versions` runs first and
refuses other SCRIPT versions). Hardened: defusedxml with DTDs, entities and external references
refused (billion laughs, XXE), input size-capped.
"""
from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import defusedxml
import defusedxml.ElementTree as DET

from ..common import (
    _SENT_TIME,
    CANCEL_RESPONSES,
    DEFAULT_MAX_BYTES,
    ERROR_UNABLE_TO_PROCESS,
    FILL_STATUSES,
    MESSAGE_ID_MAX_LENGTH,
    NDC_QUALIFIER,
    PA_APPEAL_RESPONSE_STATUSES,
    PA_CANCEL_RESPONSE_STATUSES,
    PA_INITIATION_RESPONSE_STATUSES,
    PA_QUESTION_TYPES,
    PA_RESPONSE_STATUSES,
    PARTY_QUALIFIERS,
    RELATES_TO_REQUIRED,
    RENEWAL_RESPONSES,
    TRANSACTIONS,
    Attachment,
    Header,
    MedicationInfo,
    PAQuestion,
    Party,
    PatientInfo,
    PharmacyInfo,
    PrescriberInfo,
    ResponseInfo,
    ScriptError,
    ScriptMessage,
    SenderSoftware,
    _reject,
)

# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _local(tag: object) -> str:
    """Local name of an element tag or attribute name ("{ns}Name" → "Name")."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def _find(el: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        el = _child(el, name)
        if el is None:
            return None
    return el


def _descendant(el: ET.Element, name: str) -> ET.Element | None:
    for d in el.iter():
        if d is not el and _local(d.tag) == name:
            return d
    return None


def _str(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _get(el: ET.Element | None, *path: str) -> str:
    return _str(_find(el, *path))


def _attr(el: ET.Element, name: str) -> str:
    for key, value in el.attrib.items():
        if _local(key) == name:
            return value.strip()
    return ""


def _first_child(el: ET.Element | None) -> ET.Element | None:
    if el is None:
        return None
    for c in el:
        if isinstance(c.tag, str):
            return c
    return None


class _Reader:
    """Reads one transaction element, naming paths relative to ``Body`` in errors."""

    def __init__(self, tx: ET.Element, base: str):
        self.tx = tx
        self.base = base

    def where(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def int_at(self, el: ET.Element | None, where: str) -> int | None:
        text = _str(el)
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise _reject(where, f"{text!r} is not a whole number")
        return int(text)

    def decimal_at(self, el: ET.Element | None, where: str) -> Decimal | None:
        text = _str(el)
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise _reject(where, f"{text!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise _reject(where, f"{text!r} is not a quantity")
        return value

    def date_at(self, wrapper: ET.Element | None, where: str, *, keep_time: bool = False) -> date | None:
        """``<X><Date>`` or ``<X><DateTime>`` → date (or datetime with keep_time)."""
        if wrapper is None:
            return None
        d = _child(wrapper, "Date")
        if d is not None and _str(d):
            try:
                return date.fromisoformat(_str(d))
            except ValueError:
                raise _reject(f"{where}/Date", f"{_str(d)!r} is not a date (YYYY-MM-DD)") from None
        dt_el = _child(wrapper, "DateTime")
        if dt_el is not None and _str(dt_el):
            dt = _parse_datetime(_str(dt_el), f"{where}/DateTime")
            return dt if keep_time else dt.date()
        text = _str(wrapper)  # tolerate a bare date in the wrapper
        if text:
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise _reject(where, f"{text!r} is not a date (YYYY-MM-DD)") from None
        return None

    def patient(self) -> PatientInfo | None:
        patient = _child(self.tx, "Patient")
        if patient is None:
            return None
        kind = _child(patient, "HumanPatient")
        is_animal = False
        kname = "HumanPatient"
        if kind is None:
            for kname in ("NonHumanPatient", "AnimalPatient"):  # AnimalPatient: pre-2017071 spelling
                kind = _child(patient, kname)
                if kind is not None:
                    is_animal = True
                    break
        if kind is None:
            raise _reject(self.where("Patient"), "neither HumanPatient nor NonHumanPatient")
        gender = _get(kind, "Gender") or "U"
        if gender not in ("M", "F", "U"):
            raise _reject(self.where("Patient", kname, "Gender"), f"{gender!r} is not M, F or U")
        addr = _child(kind, "Address")
        species_el = _child(kind, "Species")
        species = (_get(species_el, "Text") or _str(species_el)) if species_el is not None else ""
        return PatientInfo(
            last_name=_get(kind, "Name", "LastName"),
            first_name=_get(kind, "Name", "FirstName"),
            gender=gender,
            birth_date=self.date_at(_child(kind, "DateOfBirth"), self.where("Patient", kname, "DateOfBirth")),
            address_line1=_get(addr, "AddressLine1"),
            address_line2=_get(addr, "AddressLine2"),
            city=_get(addr, "City"),
            state=_get(addr, "StateProvince"),
            postal_code=_get(addr, "PostalCode"),
            country_code=_get(addr, "CountryCode") or "US",
            phone=_get(kind, "CommunicationNumbers", "PrimaryTelephone", "Number"),
            is_animal=is_animal,
            species=species if is_animal else "",
            owner_last_name=_get(kind, "OwnerName", "LastName") if is_animal else "",
            owner_first_name=_get(kind, "OwnerName", "FirstName") if is_animal else "",
        )

    def pharmacy(self) -> PharmacyInfo | None:
        ph = _child(self.tx, "Pharmacy")
        if ph is None:
            return None
        return PharmacyInfo(
            ncpdp_id=_get(ph, "Identification", "NCPDPID"),
            npi=_get(ph, "Identification", "NPI"),
            name=_get(ph, "BusinessName"),
            phone=_get(ph, "CommunicationNumbers", "PrimaryTelephone", "Number"),
        )

    def prescriber(self) -> PrescriberInfo | None:
        pr = _child(self.tx, "Prescriber")
        if pr is None:
            return None
        kind = _child(pr, "NonVeterinarian")
        vet = False
        if kind is None:
            kind = _child(pr, "Veterinarian")
            vet = kind is not None
        if kind is None:
            raise _reject(self.where("Prescriber"), "neither NonVeterinarian nor Veterinarian")
        return PrescriberInfo(
            npi=_get(kind, "Identification", "NPI"),
            dea=_get(kind, "Identification", "DEANumber"),
            state_license=_get(kind, "Identification", "StateLicenseNumber"),
            last_name=_get(kind, "Name", "LastName"),
            first_name=_get(kind, "Name", "FirstName"),
            phone=_get(kind, "CommunicationNumbers", "PrimaryTelephone", "Number"),
            is_veterinarian=vet,
        )

    def medication(self, tag: str) -> MedicationInfo | None:
        med = _child(self.tx, tag)
        if med is None:
            return None
        ndc = ""
        for coded in _children(med, "DrugCoded"):
            for pc in _children(coded, "ProductCode"):
                qualifier = _get(pc, "Qualifier") or _attr(pc, "Qualifier")
                if qualifier in ("", NDC_QUALIFIER) and _get(pc, "Code"):
                    ndc = _get(pc, "Code")
                    break
        qty = _child(med, "Quantity")
        return MedicationInfo(
            description=_get(med, "DrugDescription"),
            ndc=ndc,
            quantity=self.decimal_at(_child(qty, "Value"), self.where(tag, "Quantity", "Value")),
            quantity_unit=_get(qty, "QuantityUnitOfMeasure", "Code"),
            days_supply=self.int_at(_child(med, "DaysSupply"), self.where(tag, "DaysSupply")),
            written_date=self.date_at(_child(med, "WrittenDate"), self.where(tag, "WrittenDate")),
            last_fill_date=self.date_at(_child(med, "LastFillDate"), self.where(tag, "LastFillDate")),
            refills=self.int_at(_child(med, "NumberOfRefills"), self.where(tag, "NumberOfRefills")),
            sig_text=_get(med, "Sig", "SigText"),
            substitutions=_get(med, "Substitutions"),
            note=_get(med, "Note"),
        )

    def questions(self, qs: ET.Element | None, where: str) -> list[PAQuestion]:
        out: list[PAQuestion] = []
        for q in _children(qs, "Question"):
            if _child(q, "QuestionText") is None and _child(q, "QuestionType") is None:
                continue  # an answered question (PARequest), not a question to ask
            qtype_el = _child(q, "QuestionType")
            kind = _first_child(qtype_el)
            qtype = _local(kind.tag) if kind is not None else (_str(qtype_el) or "FreeText")
            if qtype not in PA_QUESTION_TYPES:
                raise _reject(
                    f"{where}/Question/QuestionType", f"{qtype!r} is not one of {PA_QUESTION_TYPES}"
                )
            choices = [(_get(c, "ChoiceID"), _get(c, "ChoiceText")) for c in _children(kind, "Choice")]
            out.append(PAQuestion(id=_get(q, "QuestionID"), text=_get(q, "QuestionText"), type=qtype,
                                  choices=choices))
        return out


def _parse_datetime(text: str, where: str) -> datetime:
    """ISO 8601 date-time; no zone means UTC (SCRIPT times are UTC)."""
    m = _SENT_TIME.match(text)
    if not m:
        raise _reject(where, f"{text!r} is not an ISO 8601 date-time")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    tz = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((frac or "0")[:6].ljust(6, "0")), tzinfo=tz,
        ).astimezone(UTC)
    except ValueError as exc:
        raise _reject(where, f"{text!r} is not a valid date-time ({exc})") from None


def _parse_party(header: ET.Element, name: str) -> Party:
    el = _child(header, name)
    if el is None or not _str(el):
        raise _reject(f"Header/{name}", "missing")
    qualifier = _attr(el, "Qualifier")
    if qualifier not in PARTY_QUALIFIERS:
        raise _reject(f"Header/{name}/@Qualifier", f"{qualifier!r} is not one of {sorted(PARTY_QUALIFIERS)}")
    return Party(qualifier=qualifier, id=_str(el))


def _parse_header(h: ET.Element, transaction: str) -> Header:
    message_id = _get(h, "MessageID")
    if not message_id:
        raise _reject("Header/MessageID", "missing")
    if len(message_id) > MESSAGE_ID_MAX_LENGTH:
        raise _reject("Header/MessageID", f"longer than {MESSAGE_ID_MAX_LENGTH} characters")
    relates = _get(h, "RelatesToMessageID")
    if transaction in RELATES_TO_REQUIRED and not relates:
        raise _reject("Header/RelatesToMessageID", f"mandatory on {transaction}")
    if len(relates) > MESSAGE_ID_MAX_LENGTH:
        raise _reject("Header/RelatesToMessageID", f"longer than {MESSAGE_ID_MAX_LENGTH} characters")
    sent = _get(h, "SentTime")
    if not sent:
        raise _reject("Header/SentTime", "missing")
    sw = _child(h, "SenderSoftware")
    return Header(
        to=_parse_party(h, "To"),
        from_=_parse_party(h, "From"),
        message_id=message_id,
        relates_to_message_id=relates,
        sent_time=_parse_datetime(sent, "Header/SentTime"),
        sender_software=SenderSoftware(
            developer=_get(sw, "SenderSoftwareDeveloper"),
            product=_get(sw, "SenderSoftwareProduct"),
            version=_get(sw, "SenderSoftwareVersionRelease"),
        ),
        rx_reference_number=_get(h, "RxReferenceNumber"),
        prescriber_order_number=_get(h, "PrescriberOrderNumber"),
    )


def _load(xml: bytes | str, max_bytes: int) -> ET.Element:
    if isinstance(xml, str):
        size = len(xml.encode("utf-8", "surrogatepass"))
    elif isinstance(xml, bytes | bytearray | memoryview):
        xml = bytes(xml)
        size = len(xml)
    else:
        raise TypeError("parse_message expects bytes or str")
    if size > max_bytes:
        raise ScriptError(
            ERROR_UNABLE_TO_PROCESS,
            f"Message: {size} bytes exceeds the {max_bytes}-byte limit",
            element="Message",
        )
    if not xml.strip():
        raise _reject("Message", "empty input")
    try:
        return DET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise _reject("DOCTYPE", "DTDs are not accepted") from None
    except defusedxml.EntitiesForbidden:
        raise _reject("ENTITY", "entity declarations are not accepted") from None
    except defusedxml.ExternalReferenceForbidden:
        raise _reject("ENTITY", "external references are not accepted") from None
    except defusedxml.DefusedXmlException as exc:
        raise _reject("Message", f"refused XML construct ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise _reject("Message", f"not well-formed XML ({exc})") from None
    except (UnicodeError, ValueError) as exc:
        raise _reject("Message", f"cannot be decoded ({exc})") from None


def load(xml: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ET.Element:
    """The ``Message`` element of ``xml`` (hardened parse); :class:`ScriptError` otherwise."""
    root = _load(xml, max_bytes)
    if _local(root.tag) != "Message":
        raise _reject(_local(root.tag) or "root", "root element must be Message")
    return root


def parse_message(xml: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ScriptMessage:
    """Read a SCRIPT 2017071 message into plain data; raise :class:`ScriptError` if it cannot be
    accepted (no version check: the package's ``parse_message`` does that first)."""
    return parse_root(load(xml, max_bytes=max_bytes))


def parse_root(root: ET.Element) -> ScriptMessage:
    header_el = _child(root, "Header")
    if header_el is None:
        raise _reject("Header", "missing")
    body = _child(root, "Body")
    if body is None:
        raise _reject("Body", "missing")
    txs = [c for c in body if isinstance(c.tag, str)]
    if len(txs) != 1:
        raise _reject("Body", f"must hold exactly one transaction, found {len(txs)}")
    tx = txs[0]
    transaction = _local(tx.tag)
    if transaction not in TRANSACTIONS:
        raise ScriptError(
            ERROR_UNABLE_TO_PROCESS, f"Body/{transaction}: unknown transaction", element=f"Body/{transaction}"
        )
    header = _parse_header(header_el, transaction)
    r = _Reader(tx, f"Body/{transaction}")

    msg = ScriptMessage(
        transaction=transaction,
        header=header,
        transaction_version=_attr(root, "TransactionVersion") or _attr(root, "version"),
        patient=r.patient(),
        pharmacy=r.pharmacy(),
        prescriber=r.prescriber(),
        medication_prescribed=r.medication("MedicationPrescribed") or r.medication("MedicationResponse"),
        medication_dispensed=r.medication("MedicationDispensed"),
        reason_code=_get(tx, "ReasonCode"),
        note=_get(tx, "Note"),
        raw=root,
    )
    refills_el = _descendant(tx, "PharmacyRequestedRefills")
    msg.requested_refills = r.int_at(refills_el, r.where("PharmacyRequestedRefills"))

    if transaction in ("Status", "Error"):
        code = _get(tx, "Code")
        if not code:
            raise _reject(r.where("Code"), "missing")
        if transaction == "Status":
            msg.status_code, msg.status_description = code, _get(tx, "Description")
        else:
            msg.error_code = code
            msg.error_description_code = _get(tx, "DescriptionCode")
            msg.error_description = _get(tx, "Description")

    fill = _child(tx, "FillStatus")
    if fill is not None:
        kind = _first_child(fill)
        if kind is None or _local(kind.tag) not in FILL_STATUSES:
            raise _reject(r.where("FillStatus"), f"must hold one of {tuple(FILL_STATUSES)}")
        msg.fill_status = _local(kind.tag)
        msg.fill_reason_code = _get(kind, "ReasonCode")
        msg.fill_note = _get(kind, "Note")

    response = _child(tx, "Response")
    if response is not None:
        status_el = _child(response, "ResponseStatus")
        kind = _first_child(status_el if status_el is not None else response)
        where = r.where("Response", "ResponseStatus") if status_el is not None else r.where("Response")
        if kind is None:
            raise _reject(where, "empty")
        msg.response = ResponseInfo(
            kind=_local(kind.tag),
            reason_codes=[_str(c) for c in _children(kind, "ReasonCode") if _str(c)],
            denial_reason=_get(kind, "DenialReason"),
            note=_get(kind, "Note"),
        )
        if transaction == "RxRenewalResponse" and msg.response.kind not in RENEWAL_RESPONSES:
            raise _reject(f"{where}/{msg.response.kind}", f"not one of {RENEWAL_RESPONSES}")
        if transaction == "CancelRxResponse" and msg.response.kind not in CANCEL_RESPONSES:
            raise _reject(f"{where}/{msg.response.kind}", f"not one of {CANCEL_RESPONSES}")
        if status_el is not None:
            _read_pa_status(r, msg, kind, where)
    elif transaction in ("RxRenewalResponse", "CancelRxResponse") or (
        transaction.startswith("PA") and transaction.endswith("Response")
    ):
        raise _reject(r.where("Response"), "missing")

    if transaction.startswith("PA"):
        msg.pa_reference_id = _get(tx, "PAReferenceID")
        msg.pa_case_id = _str(_descendant(tx, "PACaseID"))
        if transaction in ("PARequest", "PAAppealRequest", "PACancelRequest") and not msg.pa_case_id:
            raise _reject(r.where("PACaseID"), f"mandatory on {transaction}")
        msg.answers = _answers(tx)
        if transaction.endswith("Request"):
            msg.note = _str(_descendant(tx, "PANote")) or _str(_descendant(tx, "QuestionSetComment")) or msg.note
            msg.reason_code = _str(_descendant(tx, "CancelReasonCode")) or msg.reason_code
        for i, a in enumerate(_children(tx, "Attachment")):
            data_text = "".join(_get(a, "AttachmentData").split())
            try:
                data = base64.b64decode(data_text, validate=True)
            except (binascii.Error, ValueError):
                raise _reject(r.where(f"Attachment[{i + 1}]", "AttachmentData"), "not base64") from None
            msg.attachments.append(Attachment(file_name=_get(a, "AttachmentSource"),
                                              mime_type=_get(a, "MIMEType"), data=data))
    return msg


def _read_pa_status(r: _Reader, msg: ScriptMessage, kind: ET.Element, where: str) -> None:
    """ePA ``Response/ResponseStatus/<status>`` contents."""
    status = _local(kind.tag)
    allowed = {
        "PAInitiationResponse": PA_INITIATION_RESPONSE_STATUSES,
        "PAResponse": PA_RESPONSE_STATUSES,
        "PAAppealResponse": PA_APPEAL_RESPONSE_STATUSES,
        "PACancelResponse": PA_CANCEL_RESPONSE_STATUSES,
    }.get(msg.transaction, PA_RESPONSE_STATUSES)
    if status not in allowed:
        raise _reject(f"{where}/{status}", f"not one of {allowed}")
    where = f"{where}/{status}"
    msg.response_status = status
    msg.note = _get(kind, "PANote") or _get(kind, "Note") or msg.note
    codes = [_str(c) for c in (*_children(kind, "ReasonCode"), *_children(kind, "ClosedReasonCode")) if _str(c)]
    if msg.response is not None:
        msg.response.reason_codes = codes
        msg.response.note = msg.note
    detail = _child(kind, "AuthorizationDetail")
    auth_root = detail if detail is not None else kind
    msg.authorization_number = _get(auth_root, "AuthorizationNumber")
    period = _child(auth_root, "AuthorizationPeriod")
    msg.effective_date = r.date_at(
        _child(period, "EffectiveDate"), f"{where}/AuthorizationPeriod/EffectiveDate"
    )
    msg.expiration_date = r.date_at(
        _child(period, "ExpirationDate"), f"{where}/AuthorizationPeriod/ExpirationDate"
    )
    msg.denial_reasons = [_str(d) for d in _children(kind, "DenialReason") if _str(d)]
    if not msg.denial_reasons and status in ("Denied", "PartiallyDenied") and msg.note:
        msg.denial_reasons = [part for part in msg.note.split("; ") if part]  # 2017071: reasons in PANote
    more = _child(kind, "MoreInformationRequired")
    deadline = _child(kind, "DeadlineForReply")
    if deadline is None:
        deadline = _child(more, "DeadlineForReply")
    msg.deadline_for_reply = r.date_at(deadline, f"{where}/DeadlineForReply", keep_time=True)
    msg.expected_response_date = r.date_at(
        _child(kind, "ExpectedResponseDate"), f"{where}/ExpectedResponseDate"
    )
    qs = _child(kind, "QuestionSet")
    if qs is None:
        qs = more
    msg.question_set = r.questions(qs, f"{where}/QuestionSet")


def _answers(tx: ET.Element) -> list[tuple[str, str]]:
    """(QuestionID, answer) of every answered question in a PA request's QuestionSet (the answer
    sits in QuestionType/<kind>/Answer: a ChoiceID, a date, a number or text)."""
    qs = _descendant(tx, "QuestionSet")
    out: list[tuple[str, str]] = []
    for q in _children(qs, "Question"):
        answer = _descendant(q, "Answer")
        if answer is None:
            continue
        value = ""
        for leaf in answer.iter():
            if leaf is not answer and len(leaf) == 0 and _str(leaf):
                value = _str(leaf)
                break
        out.append((_get(q, "QuestionID"), value or _str(answer)))
    return out
