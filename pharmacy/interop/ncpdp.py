"""NCPDP SCRIPT 2017071 messages: build them as XML text and read them back as plain data.

Pure: no Django, no ORM, no network. Services map the dataclasses here to models.

Source of the structure: docs/standards.md, section "NCPDP SCRIPT", which describes the
2017071 envelope, header and body layout as public examples show it (e.g. the HL7 Da Vinci REMS
prototype's NewRx). The NCPDP XSDs and implementation guides are copyrighted and are *not* in this
repository, so:

* messages are built from that description with the standard's element names, and tested for
  well-formedness, required header fields and round trip — not for full schema conformance (the
  official schema requires more elements than we model, e.g. quantity code-list qualifiers);
* if an operator supplies the official XSDs (setting ``NCPDP_XSD_DIR``) and lxml happens to be
  installed, :func:`validate_against_xsd` checks a message against them; otherwise it returns None.

Layout choices where public material is thin (ePA bodies, AnimalPatient owner, attachments) are
marked "simplified" below. The reader is tolerant of position: it looks elements up by *local
name*, so a message with or without an XML namespace reads the same, and items such as
``PharmacyRequestedRefills`` and ``PACaseID`` are found anywhere inside the transaction.

Reading is defensive: XML is parsed with defusedxml with DTDs, entities and external references
refused (billion laughs, XXE), input is size-capped, and any problem raises :class:`ScriptError`
carrying the NCPDP Error code to answer with and a description naming the element at fault:

* ``900`` transaction rejected — the content is bad: not XML, DTD/entities, wrong root element,
  missing or invalid mandatory element (MessageID, SentTime, To/From, RelatesToMessageID …);
* ``601`` receiver unable to process — the message may be fine but we cannot take it: larger than
  ``max_bytes``, or a transaction this reader does not know.
"""
from __future__ import annotations

import base64
import binascii
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Literal

import defusedxml
import defusedxml.ElementTree as DET

# --------------------------------------------------------------------------------------------
# Constants (each with where it comes from)
# --------------------------------------------------------------------------------------------

#: Version stamped on every envelope attribute. STANDARDS.md: 2017071 is required for Part D
#: since 2020 (2023011 is adopted by 45 CFR 170.205(b); not produced here).
SCRIPT_VERSION = "2017071"

#: ``Message`` envelope attributes (STANDARDS.md "Envelope").
ENVELOPE_ATTRIBUTES: dict[str, str] = {
    "DatatypesVersion": SCRIPT_VERSION,
    "TransportVersion": SCRIPT_VERSION,
    "TransactionDomain": "SCRIPT",
    "TransactionVersion": SCRIPT_VERSION,
    "StructuresVersion": SCRIPT_VERSION,
    "ECLVersion": SCRIPT_VERSION,
}

#: Header ``To``/``From`` attribute ``Qualifier`` (STANDARDS.md "Envelope"; the standard lists
#: more, these are the ones this application uses).
PARTY_QUALIFIERS: dict[str, str] = {
    "P": "Pharmacy (NCPDP ID)",
    "D": "Prescriber",
    "C": "Clinic",
    "M": "Mailbox",
    "PY": "Payer",
    "ZZZ": "Mutually defined",
}

#: 2017071 transactions (transport BodyType), STANDARDS.md "Transactions in 2017071".
TRANSACTIONS: tuple[str, ...] = (
    "NewRx", "RxRenewalRequest", "RxRenewalResponse", "CancelRx", "CancelRxResponse",
    "RxChangeRequest", "RxChangeResponse", "RxFill", "RxFillIndicatorChange", "Status", "Error",
    "Verify", "GetMessage",
    # ePA
    "PAInitiationRequest", "PAInitiationResponse", "PARequest", "PAResponse",
    "PAAppealRequest", "PAAppealResponse", "PACancelRequest", "PACancelResponse",
)

#: Transactions whose header must carry ``RelatesToMessageID`` (STANDARDS.md "Envelope":
#: Status/Error, responses such as RxRenewalResponse and CancelRxResponse, RxFill/Verify; we
#: apply the same rule to the other ``*Response`` transactions, ePA included).
RELATES_TO_REQUIRED: frozenset[str] = frozenset({
    "Status", "Error", "Verify", "RxFill", "RxRenewalResponse", "CancelRxResponse",
    "RxChangeResponse", "PAInitiationResponse", "PAResponse", "PAAppealResponse", "PACancelResponse",
})

#: Header ``MessageID`` length (STANDARDS.md: 1–35 characters); applied to RelatesToMessageID too.
MESSAGE_ID_MAX_LENGTH = 35

#: ``Status/Code`` (STANDARDS.md "Status codes"). Only 000 and 010 are described there; the
#: others exist in the NCPDP external code list — look their meaning up there before relying on it.
STATUS_CODES: dict[str, str] = {
    "000": "Transaction successful",
    "001": "",
    "002": "",
    "003": "",
    "005": "",
    "010": "Accepted by ultimate receiver",
}

#: ``Error/Code`` (STANDARDS.md "Error codes").
ERROR_CODES: dict[str, str] = {
    "600": "Communication problem",
    "601": "Receiver unable to process",
    "602": "Receiver system error",
    "700": "Configuration error",
    "900": "Transaction rejected",
}
ERROR_UNABLE_TO_PROCESS = "601"
ERROR_TRANSACTION_REJECTED = "900"

#: RxRenewalResponse ``Response`` choices (STANDARDS.md "RxRenewalResponse").
RENEWAL_RESPONSES: tuple[str, ...] = ("Approved", "ApprovedWithChanges", "Denied", "Replace")
RenewalResponse = Literal["Approved", "ApprovedWithChanges", "Denied", "Replace"]

#: CancelRxResponse ``Response`` choices.
CANCEL_RESPONSES: tuple[str, ...] = ("Approved", "Denied")
CancelResponse = Literal["Approved", "Denied"]

#: Denied ``ReasonCode`` for RxRenewalResponse — STANDARDS.md "RxRenewalResponse" (denial reason
#: codes from the NCPDP external code list; up to 10 per response).
DENIAL_REASON_CODES: dict[str, str] = {
    "AA": "Patient unknown to the provider",
    "AB": "Patient never under provider care",
    "AC": "Patient no longer under provider care",
    "AD": "Refill too soon",
    "AE": "Medication never prescribed for the patient",
    "AF": "Patient should contact provider",
    "AG": "Fill/refill not appropriate",
    "AM": "Patient needs appointment",
    "AN": "Prescriber not associated with this practice or location",
    "AP": "Request already responded to by other means (e.g. phone or fax)",
    "BE": "Medication denied at patient request",
    "CZ": "Patient had allergy to requested medication",
    "DA": "Medication has been discontinued",
}
MAX_REASON_CODES = 10

#: RxFill ``FillStatus`` choices, with the code each corresponds to in the NCPDP code list
#: (STANDARDS.md "RxFill": Dispensed AH, PartiallyDispensed AJ, NotDispensed AK; Transferred has
#: no code given there).
FILL_STATUSES: dict[str, str] = {
    "Dispensed": "AH",
    "PartiallyDispensed": "AJ",
    "NotDispensed": "AK",
    "Transferred": "",
}
FillStatus = Literal["Dispensed", "PartiallyDispensed", "NotDispensed", "Transferred"]
#: Fill statuses that must carry ``MedicationDispensed`` (STANDARDS.md "RxFill").
FILL_STATUSES_WITH_DISPENSED: frozenset[str] = frozenset({"Dispensed", "PartiallyDispensed"})

#: Example NotDispensed ``ReasonCode`` values (STANDARDS.md "RxFill"; not exhaustive).
NOT_DISPENSED_REASON_CODES: dict[str, str] = {
    "AO": "No attempt will be made to obtain prior authorization",
    "BP": "Out of stock",
}

#: ePA ``ResponseStatus`` choices (STANDARDS.md "ePA").
PA_INITIATION_RESPONSE_STATUSES: tuple[str, ...] = ("Open", "Closed")
PA_RESPONSE_STATUSES: tuple[str, ...] = (
    "Approved", "Denied", "InProcess", "Open", "Closed", "PartiallyDenied",
)
PA_APPEAL_RESPONSE_STATUSES: tuple[str, ...] = ("Approved", "Denied", "Open", "Closed", "PartiallyDenied")
PA_CANCEL_RESPONSE_STATUSES: tuple[str, ...] = ("Approved", "Denied")

#: Question kinds in an ePA ``QuestionSet`` (simplified: the kind is the element inside
#: ``QuestionType``).
PA_QUESTION_TYPES: tuple[str, ...] = ("FreeText", "Numeric", "Date", "Select")

#: ``DrugCoded/ProductCode/Qualifier`` for an NDC.
NDC_QUALIFIER = "ND"

DEFAULT_MAX_BYTES = 1_000_000

# XML 1.0 ``Char`` production: anything else cannot be written into a document.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SENT_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$"
)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ScriptError(ValueError):
    """An inbound message we refuse; ``code`` is the NCPDP ``Error/Code`` to answer with.

    ``element`` is the path of the element at fault (e.g. ``Header/MessageID``) when known; the
    description always names it as well.
    """

    def __init__(self, code: str, description: str, *, element: str = "", description_code: str = ""):
        super().__init__(f"NCPDP {code}: {description}")
        self.code = code
        self.description = description
        self.element = element
        self.description_code = description_code


def _reject(element: str, problem: str) -> ScriptError:
    return ScriptError(ERROR_TRANSACTION_REJECTED, f"{element}: {problem}", element=element)


# --------------------------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------------------------


@dataclass
class Party:
    """Header ``To`` / ``From``: an identifier with its ``Qualifier`` attribute."""

    qualifier: str  # P pharmacy (NCPDP ID), D prescriber, C clinic, M mailbox, PY payer, ZZZ
    id: str

    def __post_init__(self) -> None:
        if self.qualifier not in PARTY_QUALIFIERS:
            raise ValueError(f"Party qualifier {self.qualifier!r} is not one of {sorted(PARTY_QUALIFIERS)}")
        if not self.id or not self.id.strip():
            raise ValueError("Party id is empty")
        _check_text("Party id", self.id)


@dataclass
class SenderSoftware:
    """Header ``SenderSoftware``."""

    developer: str = "Rx Workflow Hub"  # SenderSoftwareDeveloper
    product: str = "Rx Workflow Hub"  # SenderSoftwareProduct
    version: str = "0.1.0"  # SenderSoftwareVersionRelease


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Header:
    """``Message/Header``.

    ``sent_time`` must be timezone-aware; it is converted to UTC and cut to milliseconds (the
    precision written to ``SentTime``). ``message_id`` and ``relates_to_message_id`` are 1–35
    characters.
    """

    to: Party
    from_: Party
    message_id: str
    relates_to_message_id: str = ""
    sent_time: datetime = field(default_factory=_utc_now)
    sender_software: SenderSoftware = field(default_factory=SenderSoftware)
    rx_reference_number: str = ""  # pharmacy's Rx number
    prescriber_order_number: str = ""

    def __post_init__(self) -> None:
        _check_message_id("MessageID", self.message_id)
        if self.relates_to_message_id:
            _check_message_id("RelatesToMessageID", self.relates_to_message_id)
        if self.sent_time.tzinfo is None or self.sent_time.utcoffset() is None:
            raise ValueError("SentTime must be timezone-aware (it is sent as UTC)")
        utc = self.sent_time.astimezone(UTC)
        self.sent_time = utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@dataclass
class PatientInfo:
    """``Patient/HumanPatient`` or, with ``is_animal``, ``Patient/AnimalPatient``.

    For an animal, ``last_name``/``first_name`` are the animal's names as the clinic records them;
    ``species`` and the owner's name are written as ``Species`` and ``OwnerName`` (simplified).
    """

    last_name: str
    first_name: str = ""
    gender: str = "U"  # Gender: M | F | U
    birth_date: date | None = None  # DateOfBirth/Date
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    state: str = ""  # StateProvince
    postal_code: str = ""
    country_code: str = "US"
    phone: str = ""  # CommunicationNumbers/PrimaryTelephone/Number
    is_animal: bool = False
    species: str = ""
    owner_last_name: str = ""
    owner_first_name: str = ""

    def __post_init__(self) -> None:
        if self.gender not in ("M", "F", "U"):
            raise ValueError(f"Gender {self.gender!r} is not M, F or U")
        if isinstance(self.birth_date, datetime):
            self.birth_date = self.birth_date.date()
        if not self.is_animal and (self.species or self.owner_last_name or self.owner_first_name):
            raise ValueError("species/owner name are for veterinary (AnimalPatient) patients only")


@dataclass
class PharmacyInfo:
    """``Pharmacy``: ``Identification/NCPDPID``, ``Identification/NPI``, ``BusinessName``."""

    ncpdp_id: str = ""
    npi: str = ""
    name: str = ""
    phone: str = ""


@dataclass
class PrescriberInfo:
    """``Prescriber/NonVeterinarian`` or, with ``is_veterinarian``, ``Prescriber/Veterinarian``."""

    npi: str = ""  # Identification/NPI
    dea: str = ""  # Identification/DEANumber
    state_license: str = ""  # Identification/StateLicenseNumber
    last_name: str = ""
    first_name: str = ""
    phone: str = ""
    is_veterinarian: bool = False


@dataclass
class MedicationInfo:
    """``MedicationPrescribed`` / ``MedicationDispensed``.

    ``substitutions`` is the ``Substitutions`` code as sent ("0" substitution allowed, "1"
    substitution not allowed by prescriber); ``quantity_unit`` is the
    ``Quantity/QuantityUnitOfMeasure/Code`` (NCI code, e.g. C48542 tablet).
    """

    description: str  # DrugDescription
    ndc: str = ""  # DrugCoded/ProductCode/Code with Qualifier ND
    quantity: Decimal | None = None  # Quantity/Value
    quantity_unit: str = ""
    days_supply: int | None = None  # DaysSupply
    written_date: date | None = None  # WrittenDate/Date
    last_fill_date: date | None = None  # LastFillDate/Date
    refills: int | None = None  # NumberOfRefills
    sig_text: str = ""  # Sig/SigText
    substitutions: str = ""  # Substitutions
    note: str = ""  # Note

    def __post_init__(self) -> None:
        if self.quantity is not None and not isinstance(self.quantity, Decimal):
            self.quantity = Decimal(str(self.quantity))
        if self.quantity is not None and (not self.quantity.is_finite() or self.quantity < 0):
            raise ValueError(f"Quantity {self.quantity} must be a finite number >= 0")
        for name in ("days_supply", "refills"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("written_date", "last_fill_date"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                setattr(self, name, value.date())


@dataclass
class ResponseInfo:
    """``Response`` of RxRenewalResponse / CancelRxResponse, or the ePA ``ResponseStatus``."""

    kind: str  # e.g. Approved | ApprovedWithChanges | Denied | Replace (ePA: Open, Closed …)
    reason_codes: list[str] = field(default_factory=list)  # ReasonCode (repeats)
    denial_reason: str = ""  # DenialReason (first; ePA keeps all in ScriptMessage.denial_reasons)
    note: str = ""  # Note


@dataclass
class PAQuestion:
    """One ePA ``QuestionSet/Question`` (simplified): ``QuestionID``, ``QuestionText``,
    ``QuestionType/<kind>``; a Select question lists ``Choice`` (``ChoiceID``, ``ChoiceText``)."""

    id: str
    text: str
    type: str = "FreeText"  # one of PA_QUESTION_TYPES
    choices: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type not in PA_QUESTION_TYPES:
            raise ValueError(f"Question type {self.type!r} is not one of {PA_QUESTION_TYPES}")
        self.choices = [(str(choice_id), str(text)) for choice_id, text in self.choices]


@dataclass
class Attachment:
    """An ePA ``Attachment`` (simplified): ``AttachmentSource`` (file name), ``MIMEType``,
    ``AttachmentData`` (base64)."""

    file_name: str
    mime_type: str
    data: bytes


@dataclass
class ScriptMessage:
    """A parsed SCRIPT message. Fields that the transaction does not carry stay empty/None."""

    transaction: str  # local name of the Body child, e.g. "RxRenewalRequest"
    header: Header
    transaction_version: str = ""  # Message@TransactionVersion (or legacy @version)
    patient: PatientInfo | None = None
    pharmacy: PharmacyInfo | None = None
    prescriber: PrescriberInfo | None = None
    medication_prescribed: MedicationInfo | None = None
    medication_dispensed: MedicationInfo | None = None
    requested_refills: int | None = None  # PharmacyRequestedRefills
    response: ResponseInfo | None = None
    fill_status: str = ""  # FillStatus/<kind>
    fill_reason_code: str = ""  # FillStatus/<kind>/ReasonCode
    fill_note: str = ""  # FillStatus/<kind>/Note
    status_code: str = ""  # Status/Code
    status_description: str = ""  # Status/Description
    error_code: str = ""  # Error/Code
    error_description_code: str = ""  # Error/DescriptionCode
    error_description: str = ""  # Error/Description
    # ePA
    pa_reference_id: str = ""  # PAReferenceID
    pa_case_id: str = ""  # PACaseID
    response_status: str = ""  # ResponseStatus/<kind>: Approved, Denied, InProcess, Open, …
    authorization_number: str = ""
    effective_date: date | None = None  # AuthorizationPeriod/EffectiveDate
    expiration_date: date | None = None  # AuthorizationPeriod/ExpirationDate
    question_set: list[PAQuestion] = field(default_factory=list)
    deadline_for_reply: date | datetime | None = None  # DeadlineForReply/Date or /DateTime
    expected_response_date: date | None = None  # InProcess ExpectedResponseDate
    denial_reasons: list[str] = field(default_factory=list)  # DenialReason (repeats)
    answers: list[tuple[str, str]] = field(default_factory=list)  # (QuestionID, Answer)
    attachments: list[Attachment] = field(default_factory=list)
    reason_code: str = ""  # transaction-level ReasonCode (PACancelRequest)
    note: str = ""  # transaction-level Note (CancelRx, ePA requests); ePA responses: status Note
    raw: ET.Element | None = field(default=None, repr=False, compare=False)  # the Message element

    # Header shortcuts
    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def relates_to_message_id(self) -> str:
        return self.header.relates_to_message_id

    @property
    def sent_time(self) -> datetime:
        return self.header.sent_time

    @property
    def to(self) -> Party:
        return self.header.to

    @property
    def from_(self) -> Party:
        return self.header.from_

    @property
    def rx_reference_number(self) -> str:
        return self.header.rx_reference_number

    @property
    def prescriber_order_number(self) -> str:
        return self.header.prescriber_order_number


# --------------------------------------------------------------------------------------------
# Helpers shared by builders
# --------------------------------------------------------------------------------------------


def new_message_id() -> str:
    """A fresh MessageID (32 hex characters, within the 35-character limit)."""
    return uuid.uuid4().hex


def reply_header(
    received: ScriptMessage | Header,
    *,
    message_id: str | None = None,
    sent_time: datetime | None = None,
    sender_software: SenderSoftware | None = None,
) -> Header:
    """Header for an answer to ``received``: To/From swapped, RelatesToMessageID set, the Rx
    reference and prescriber order numbers carried over."""
    h = received.header if isinstance(received, ScriptMessage) else received
    return Header(
        to=h.from_,
        from_=h.to,
        message_id=message_id or new_message_id(),
        relates_to_message_id=h.message_id,
        sent_time=sent_time or _utc_now(),
        sender_software=sender_software or SenderSoftware(),
        rx_reference_number=h.rx_reference_number,
        prescriber_order_number=h.prescriber_order_number,
    )


def _check_message_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is empty")
    if len(value) > MESSAGE_ID_MAX_LENGTH:
        raise ValueError(f"{name} is {len(value)} characters; at most {MESSAGE_ID_MAX_LENGTH} allowed")
    _check_text(name, value)


def _check_text(name: str, value: str) -> None:
    bad = _NOT_XML_CHAR.search(value)
    if bad:
        raise ValueError(f"{name}: character U+{ord(bad.group()):04X} cannot be written in XML")


def _norm(value: str) -> str:
    """What is written for a text value: line endings as LF (XML parsers turn CR into LF anyway),
    leading/trailing whitespace trimmed (the reader trims too)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _text(parent: ET.Element, tag: str, value: object) -> ET.Element | None:
    """Append ``<tag>value</tag>`` unless value is None/empty; dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        text = _format_datetime(value)
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, bool):
        raise TypeError(f"{tag}: boolean is not a SCRIPT value")
    elif isinstance(value, int):
        text = str(value)
    else:
        text = str(value)
        _check_text(tag, text)
        text = _norm(text)
    if not text:
        return None
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def _format_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime values must be timezone-aware (they are sent as UTC)")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def _date_wrapper(parent: ET.Element, tag: str, value: date | datetime | None) -> None:
    """``<tag><Date>YYYY-MM-DD</Date></tag>`` (or ``<DateTime>`` for a datetime)."""
    if value is None:
        return
    el = ET.SubElement(parent, tag)
    if isinstance(value, datetime):
        _text(el, "DateTime", value)
    else:
        _text(el, "Date", value)


def _has_content(el: ET.Element) -> bool:
    return len(el) > 0


def _phone(parent: ET.Element, number: str) -> None:
    if number and _norm(number):
        comm = ET.SubElement(parent, "CommunicationNumbers")
        tel = ET.SubElement(comm, "PrimaryTelephone")
        _text(tel, "Number", number)


def _name(parent: ET.Element, tag: str, last: str, first: str) -> None:
    name = ET.Element(tag)
    _text(name, "LastName", last)
    _text(name, "FirstName", first)
    if _has_content(name):
        parent.append(name)


def _patient_el(parent: ET.Element, p: PatientInfo) -> None:
    patient = ET.SubElement(parent, "Patient")
    kind = ET.SubElement(patient, "AnimalPatient" if p.is_animal else "HumanPatient")
    _name(kind, "Name", p.last_name, p.first_name)
    _text(kind, "Gender", p.gender)
    _date_wrapper(kind, "DateOfBirth", p.birth_date)
    addr = ET.Element("Address")
    _text(addr, "AddressLine1", p.address_line1)
    _text(addr, "AddressLine2", p.address_line2)
    _text(addr, "City", p.city)
    _text(addr, "StateProvince", p.state)
    _text(addr, "PostalCode", p.postal_code)
    if _has_content(addr):
        _text(addr, "CountryCode", p.country_code)
        kind.append(addr)
    _phone(kind, p.phone)
    if p.is_animal:
        _text(kind, "Species", p.species)  # simplified
        _name(kind, "OwnerName", p.owner_last_name, p.owner_first_name)  # simplified


def _pharmacy_el(parent: ET.Element, p: PharmacyInfo) -> None:
    pharmacy = ET.SubElement(parent, "Pharmacy")
    ident = ET.SubElement(pharmacy, "Identification")
    _text(ident, "NCPDPID", p.ncpdp_id)
    _text(ident, "NPI", p.npi)
    _text(pharmacy, "BusinessName", p.name)
    _phone(pharmacy, p.phone)


def _prescriber_el(parent: ET.Element, p: PrescriberInfo) -> None:
    prescriber = ET.SubElement(parent, "Prescriber")
    kind = ET.SubElement(prescriber, "Veterinarian" if p.is_veterinarian else "NonVeterinarian")
    ident = ET.SubElement(kind, "Identification")
    _text(ident, "NPI", p.npi)
    _text(ident, "DEANumber", p.dea)
    _text(ident, "StateLicenseNumber", p.state_license)
    _name(kind, "Name", p.last_name, p.first_name)
    _phone(kind, p.phone)


def _medication_el(
    parent: ET.Element, tag: str, m: MedicationInfo, requested_refills: int | None = None
) -> None:
    med = ET.SubElement(parent, tag)
    _text(med, "DrugDescription", m.description)
    if m.ndc and _norm(m.ndc):
        coded = ET.SubElement(med, "DrugCoded")
        code = ET.SubElement(coded, "ProductCode")
        _text(code, "Code", m.ndc)
        _text(code, "Qualifier", NDC_QUALIFIER)
    if m.quantity is not None:
        qty = ET.SubElement(med, "Quantity")
        _text(qty, "Value", m.quantity)
        if m.quantity_unit and _norm(m.quantity_unit):
            uom = ET.SubElement(qty, "QuantityUnitOfMeasure")
            _text(uom, "Code", m.quantity_unit)
    _text(med, "DaysSupply", m.days_supply)
    _date_wrapper(med, "WrittenDate", m.written_date)
    _date_wrapper(med, "LastFillDate", m.last_fill_date)
    _text(med, "Substitutions", m.substitutions)
    _text(med, "NumberOfRefills", m.refills)
    if requested_refills is not None:
        _text(med, "PharmacyRequestedRefills", requested_refills)
    _text(med, "Note", m.note)
    if m.sig_text and _norm(m.sig_text):
        sig = ET.SubElement(med, "Sig")
        _text(sig, "SigText", m.sig_text)


def _envelope(header: Header, transaction: str) -> tuple[ET.Element, ET.Element]:
    """``<Message …><Header>…</Header><Body><transaction/></Body></Message>``."""
    if transaction in RELATES_TO_REQUIRED and not header.relates_to_message_id:
        raise ValueError(f"{transaction}: Header RelatesToMessageID is mandatory")
    msg = ET.Element("Message", ENVELOPE_ATTRIBUTES)
    h = ET.SubElement(msg, "Header")
    to = ET.SubElement(h, "To", {"Qualifier": header.to.qualifier})
    to.text = _norm(header.to.id)
    frm = ET.SubElement(h, "From", {"Qualifier": header.from_.qualifier})
    frm.text = _norm(header.from_.id)
    _text(h, "MessageID", header.message_id)
    _text(h, "RelatesToMessageID", header.relates_to_message_id)
    _text(h, "SentTime", header.sent_time)
    sw = ET.SubElement(h, "SenderSoftware")
    _text(sw, "SenderSoftwareDeveloper", header.sender_software.developer)
    _text(sw, "SenderSoftwareProduct", header.sender_software.product)
    _text(sw, "SenderSoftwareVersionRelease", header.sender_software.version)
    _text(h, "RxReferenceNumber", header.rx_reference_number)
    _text(h, "PrescriberOrderNumber", header.prescriber_order_number)
    body = ET.SubElement(msg, "Body")
    return msg, ET.SubElement(body, transaction)


def _serialize(msg: ET.Element) -> str:
    ET.indent(msg, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(msg, encoding="unicode") + "\n"


def _with_relates(header: Header, relates_to_message_id: str | None) -> Header:
    if relates_to_message_id is not None:
        return replace(header, relates_to_message_id=relates_to_message_id)
    return header


def _parties(
    tx: ET.Element,
    patient: PatientInfo | None,
    pharmacy: PharmacyInfo | None,
    prescriber: PrescriberInfo | None,
) -> None:
    if patient is not None:
        _patient_el(tx, patient)
    if pharmacy is not None:
        _pharmacy_el(tx, pharmacy)
    if prescriber is not None:
        _prescriber_el(tx, prescriber)


def _reason_codes(parent: ET.Element, codes: Sequence[str], *, table: dict[str, str] | None) -> None:
    codes = list(codes)
    if len(codes) > MAX_REASON_CODES:
        raise ValueError(f"at most {MAX_REASON_CODES} ReasonCode values, got {len(codes)}")
    for code in codes:
        if table is not None and code not in table:
            raise ValueError(f"ReasonCode {code!r} is not one of {sorted(table)}")
        _text(parent, "ReasonCode", code)


# --------------------------------------------------------------------------------------------
# Builders: prescriber/pharmacy transactions
# --------------------------------------------------------------------------------------------


def build_new_rx(
    *,
    header: Header,
    patient: PatientInfo,
    pharmacy: PharmacyInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo,
) -> str:
    """NewRx: a new prescription, prescriber → pharmacy."""
    msg, tx = _envelope(header, "NewRx")
    _parties(tx, patient, pharmacy, prescriber)
    _medication_el(tx, "MedicationPrescribed", medication)
    return _serialize(msg)


def build_rx_renewal_request(
    *,
    header: Header,
    patient: PatientInfo,
    pharmacy: PharmacyInfo,
    prescriber: PrescriberInfo,
    medication_prescribed: MedicationInfo,
    requested_refills: int,
    medication_dispensed: MedicationInfo | None = None,
) -> str:
    """RxRenewalRequest (10.6 REFREQ): the pharmacy asks for more fills.

    ``PharmacyRequestedRefills`` is written inside MedicationDispensed when one is given, else
    inside MedicationPrescribed (the reader finds it anywhere in the transaction).
    """
    if isinstance(requested_refills, bool) or not isinstance(requested_refills, int) or requested_refills < 0:
        raise ValueError(f"PharmacyRequestedRefills must be an integer >= 0, got {requested_refills!r}")
    msg, tx = _envelope(header, "RxRenewalRequest")
    _parties(tx, patient, pharmacy, prescriber)
    if medication_dispensed is not None:
        _medication_el(tx, "MedicationDispensed", medication_dispensed, requested_refills)
        _medication_el(tx, "MedicationPrescribed", medication_prescribed)
    else:
        _medication_el(tx, "MedicationPrescribed", medication_prescribed, requested_refills)
    return _serialize(msg)


def build_rx_renewal_response(
    *,
    header: Header,
    response: RenewalResponse,
    relates_to_message_id: str | None = None,
    reason_codes: Sequence[str] = (),
    denial_reason: str = "",
    note: str = "",
    medication: MedicationInfo | None = None,
    patient: PatientInfo | None = None,
    pharmacy: PharmacyInfo | None = None,
    prescriber: PrescriberInfo | None = None,
) -> str:
    """RxRenewalResponse (10.6 REFRES): the prescriber's answer to an RxRenewalRequest.

    ``Denied`` needs at least one ReasonCode (from DENIAL_REASON_CODES, ≤ 10) or a DenialReason
    text; ``ApprovedWithChanges`` (different number of refills) and ``Replace`` (sig or drug
    changed) need the changed ``medication``.
    """
    header = _with_relates(header, relates_to_message_id)
    if response not in RENEWAL_RESPONSES:
        raise ValueError(f"Response {response!r} is not one of {RENEWAL_RESPONSES}")
    if response == "Denied":
        if not reason_codes and not _norm(denial_reason):
            raise ValueError("Denied needs a ReasonCode or a DenialReason")
    elif reason_codes or denial_reason:
        raise ValueError("ReasonCode/DenialReason belong to a Denied response only")
    if response in ("ApprovedWithChanges", "Replace") and medication is None:
        raise ValueError(f"{response} needs the changed medication")
    if response == "ApprovedWithChanges" and medication is not None and medication.refills is None:
        raise ValueError("ApprovedWithChanges needs medication.refills (NumberOfRefills)")
    msg, tx = _envelope(header, "RxRenewalResponse")
    kind = ET.SubElement(ET.SubElement(tx, "Response"), response)
    _reason_codes(kind, reason_codes, table=DENIAL_REASON_CODES)
    _text(kind, "DenialReason", denial_reason)
    _text(kind, "Note", note)
    _parties(tx, patient, pharmacy, prescriber)
    if medication is not None:
        _medication_el(tx, "MedicationPrescribed", medication)
    return _serialize(msg)


def build_rx_fill(
    *,
    header: Header,
    fill_status: FillStatus,
    relates_to_message_id: str | None = None,
    reason_code: str = "",
    note: str = "",
    medication_dispensed: MedicationInfo | None = None,
    medication_prescribed: MedicationInfo | None = None,
    patient: PatientInfo | None = None,
    pharmacy: PharmacyInfo | None = None,
    prescriber: PrescriberInfo | None = None,
) -> str:
    """RxFill: the pharmacy tells the prescriber what happened to a prescription.

    Dispensed / PartiallyDispensed must carry ``medication_dispensed``.
    """
    header = _with_relates(header, relates_to_message_id)
    if fill_status not in FILL_STATUSES:
        raise ValueError(f"FillStatus {fill_status!r} is not one of {tuple(FILL_STATUSES)}")
    if fill_status in FILL_STATUSES_WITH_DISPENSED and medication_dispensed is None:
        raise ValueError(f"{fill_status} needs MedicationDispensed")
    msg, tx = _envelope(header, "RxFill")
    kind = ET.SubElement(ET.SubElement(tx, "FillStatus"), fill_status)
    _text(kind, "ReasonCode", reason_code)
    _text(kind, "Note", note)
    _parties(tx, patient, pharmacy, prescriber)
    if medication_prescribed is not None:
        _medication_el(tx, "MedicationPrescribed", medication_prescribed)
    if medication_dispensed is not None:
        _medication_el(tx, "MedicationDispensed", medication_dispensed)
    return _serialize(msg)


def build_cancel_rx(
    *,
    header: Header,
    patient: PatientInfo,
    pharmacy: PharmacyInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo,
    note: str = "",
) -> str:
    """CancelRx: the prescriber cancels a prescription sent before (identify it with the header's
    PrescriberOrderNumber / RxReferenceNumber)."""
    msg, tx = _envelope(header, "CancelRx")
    _parties(tx, patient, pharmacy, prescriber)
    _medication_el(tx, "MedicationPrescribed", medication)
    _text(tx, "Note", note)
    return _serialize(msg)


def build_cancel_rx_response(
    *,
    header: Header,
    response: CancelResponse,
    relates_to_message_id: str | None = None,
    reason_codes: Sequence[str] = (),
    denial_reason: str = "",
    note: str = "",
    patient: PatientInfo | None = None,
    pharmacy: PharmacyInfo | None = None,
    prescriber: PrescriberInfo | None = None,
    medication: MedicationInfo | None = None,
) -> str:
    """CancelRxResponse: the pharmacy's Approved / Denied answer to a CancelRx."""
    header = _with_relates(header, relates_to_message_id)
    if response not in CANCEL_RESPONSES:
        raise ValueError(f"Response {response!r} is not one of {CANCEL_RESPONSES}")
    if response == "Approved" and (reason_codes or denial_reason):
        raise ValueError("ReasonCode/DenialReason belong to a Denied response only")
    msg, tx = _envelope(header, "CancelRxResponse")
    kind = ET.SubElement(ET.SubElement(tx, "Response"), response)
    _reason_codes(kind, reason_codes, table=None)
    _text(kind, "DenialReason", denial_reason)
    _text(kind, "Note", note)
    _parties(tx, patient, pharmacy, prescriber)
    if medication is not None:
        _medication_el(tx, "MedicationPrescribed", medication)
    return _serialize(msg)


def build_status(
    *,
    header: Header,
    relates_to_message_id: str | None = None,
    code: str = "010",
    description: str = "",
) -> str:
    """Status: acknowledgement of a message (000 success, 010 accepted by ultimate receiver)."""
    header = _with_relates(header, relates_to_message_id)
    if code not in STATUS_CODES:
        raise ValueError(f"Status code {code!r} is not one of {sorted(STATUS_CODES)}")
    msg, tx = _envelope(header, "Status")
    _text(tx, "Code", code)
    _text(tx, "Description", description)
    return _serialize(msg)


def build_error(
    *,
    header: Header,
    code: str,
    relates_to_message_id: str | None = None,
    description_code: str = "",
    description: str = "",
) -> str:
    """Error: a message could not be accepted (600, 601, 602, 700, 900)."""
    header = _with_relates(header, relates_to_message_id)
    if code not in ERROR_CODES:
        raise ValueError(f"Error code {code!r} is not one of {sorted(ERROR_CODES)}")
    msg, tx = _envelope(header, "Error")
    _text(tx, "Code", code)
    _text(tx, "DescriptionCode", description_code)
    _text(tx, "Description", description)
    return _serialize(msg)


def build_error_for(exc: ScriptError, *, header: Header) -> str:
    """The Error reply for a :class:`ScriptError` raised by :func:`parse_message`."""
    return build_error(
        header=header, code=exc.code, description_code=exc.description_code, description=exc.description
    )


# --------------------------------------------------------------------------------------------
# Builders: ePA (simplified layout, see module docstring)
# --------------------------------------------------------------------------------------------


def _pa_common(
    tx: ET.Element,
    *,
    pa_reference_id: str,
    patient: PatientInfo | None,
    pharmacy: PharmacyInfo | None,
    prescriber: PrescriberInfo | None,
    medication: MedicationInfo | None,
) -> None:
    _text(tx, "PAReferenceID", pa_reference_id)
    _parties(tx, patient, pharmacy, prescriber)
    if medication is not None:
        _medication_el(tx, "MedicationPrescribed", medication)


def _answers_el(tx: ET.Element, answers: Iterable[tuple[str, str]]) -> None:
    answers = list(answers)
    if not answers:
        return
    qs = ET.SubElement(tx, "QuestionSet")
    for question_id, answer in answers:
        if not _norm(question_id):
            raise ValueError("answer without a QuestionID")
        q = ET.SubElement(qs, "Question")
        _text(q, "QuestionID", question_id)
        _text(q, "Answer", answer)


def _attachments_el(tx: ET.Element, attachments: Iterable[Attachment]) -> None:
    for a in attachments:
        el = ET.SubElement(tx, "Attachment")
        _text(el, "AttachmentSource", a.file_name)
        _text(el, "MIMEType", a.mime_type)
        _text(el, "AttachmentData", base64.b64encode(a.data).decode("ascii"))


def _require_case_id(pa_case_id: str) -> None:
    if not pa_case_id or not _norm(pa_case_id):
        raise ValueError("PACaseID is required")


def build_pa_initiation_request(
    *,
    header: Header,
    patient: PatientInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo,
    pharmacy: PharmacyInfo | None = None,
    pa_reference_id: str = "",
    note: str = "",
) -> str:
    """PAInitiationRequest: ask the payer for the PA question set for a drug."""
    msg, tx = _envelope(header, "PAInitiationRequest")
    _pa_common(tx, pa_reference_id=pa_reference_id, patient=patient, pharmacy=pharmacy,
               prescriber=prescriber, medication=medication)
    _text(tx, "Note", note)
    return _serialize(msg)


def build_pa_request(
    *,
    header: Header,
    pa_case_id: str,
    answers: Sequence[tuple[str, str]],
    patient: PatientInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo,
    pharmacy: PharmacyInfo | None = None,
    pa_reference_id: str = "",
    attachments: Sequence[Attachment] = (),
    note: str = "",
) -> str:
    """PARequest: answers (``(QuestionID, answer)``) and attachments for an open PA case."""
    _require_case_id(pa_case_id)
    msg, tx = _envelope(header, "PARequest")
    _pa_common(tx, pa_reference_id=pa_reference_id, patient=patient, pharmacy=pharmacy,
               prescriber=prescriber, medication=medication)
    _text(tx, "PACaseID", pa_case_id)
    _answers_el(tx, answers)
    _attachments_el(tx, attachments)
    _text(tx, "Note", note)
    return _serialize(msg)


def build_pa_appeal_request(
    *,
    header: Header,
    pa_case_id: str,
    patient: PatientInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo,
    note: str = "",
    answers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[Attachment] = (),
    pharmacy: PharmacyInfo | None = None,
    pa_reference_id: str = "",
) -> str:
    """PAAppealRequest: appeal a denied PA case; ``note`` carries the justification."""
    _require_case_id(pa_case_id)
    msg, tx = _envelope(header, "PAAppealRequest")
    _pa_common(tx, pa_reference_id=pa_reference_id, patient=patient, pharmacy=pharmacy,
               prescriber=prescriber, medication=medication)
    _text(tx, "PACaseID", pa_case_id)
    _answers_el(tx, answers)
    _attachments_el(tx, attachments)
    _text(tx, "Note", note)
    return _serialize(msg)


def build_pa_cancel_request(
    *,
    header: Header,
    pa_case_id: str,
    patient: PatientInfo,
    prescriber: PrescriberInfo,
    medication: MedicationInfo | None = None,
    reason_code: str = "",
    note: str = "",
    pharmacy: PharmacyInfo | None = None,
    pa_reference_id: str = "",
) -> str:
    """PACancelRequest: withdraw a PA case."""
    _require_case_id(pa_case_id)
    msg, tx = _envelope(header, "PACancelRequest")
    _pa_common(tx, pa_reference_id=pa_reference_id, patient=patient, pharmacy=pharmacy,
               prescriber=prescriber, medication=medication)
    _text(tx, "PACaseID", pa_case_id)
    _text(tx, "ReasonCode", reason_code)
    _text(tx, "Note", note)
    return _serialize(msg)


def _question_el(parent: ET.Element, q: PAQuestion) -> None:
    el = ET.SubElement(parent, "Question")
    _text(el, "QuestionID", q.id)
    _text(el, "QuestionText", q.text)
    kind = ET.SubElement(ET.SubElement(el, "QuestionType"), q.type)
    for choice_id, choice_text in q.choices:
        choice = ET.SubElement(kind, "Choice")
        _text(choice, "ChoiceID", choice_id)
        _text(choice, "ChoiceText", choice_text)


def _pa_response(
    transaction: str,
    allowed: tuple[str, ...],
    *,
    header: Header,
    status: str,
    relates_to_message_id: str | None,
    pa_case_id: str,
    pa_reference_id: str,
    authorization_number: str = "",
    effective_date: date | None = None,
    expiration_date: date | None = None,
    reason_codes: Sequence[str] = (),
    denial_reasons: Sequence[str] = (),
    question_set: Sequence[PAQuestion] = (),
    deadline_for_reply: date | datetime | None = None,
    expected_response_date: date | None = None,
    note: str = "",
    patient: PatientInfo | None = None,
) -> str:
    header = _with_relates(header, relates_to_message_id)
    if status not in allowed:
        raise ValueError(f"{transaction} ResponseStatus {status!r} is not one of {allowed}")
    if status == "Open" and not question_set:
        raise ValueError("an Open response needs a QuestionSet")
    if question_set and status != "Open":
        raise ValueError("a QuestionSet belongs to an Open response only")
    if (authorization_number or effective_date or expiration_date) and status not in (
        "Approved", "PartiallyDenied"
    ):
        raise ValueError("authorization details belong to Approved/PartiallyDenied responses only")
    if denial_reasons and status not in ("Denied", "PartiallyDenied"):
        raise ValueError("DenialReason belongs to Denied/PartiallyDenied responses only")
    if expected_response_date is not None and status != "InProcess":
        raise ValueError("ExpectedResponseDate belongs to an InProcess response only")
    msg, tx = _envelope(header, transaction)
    _text(tx, "PAReferenceID", pa_reference_id)
    if patient is not None:
        _patient_el(tx, patient)
    kind = ET.SubElement(ET.SubElement(ET.SubElement(tx, "Response"), "ResponseStatus"), status)
    _text(kind, "PACaseID", pa_case_id)
    if authorization_number or effective_date or expiration_date:
        detail = ET.SubElement(kind, "AuthorizationDetail")
        _text(detail, "AuthorizationNumber", authorization_number)
        if effective_date or expiration_date:
            period = ET.SubElement(detail, "AuthorizationPeriod")
            _date_wrapper(period, "EffectiveDate", effective_date)
            _date_wrapper(period, "ExpirationDate", expiration_date)
    _reason_codes(kind, reason_codes, table=None)
    for reason in denial_reasons:
        _text(kind, "DenialReason", reason)
    _date_wrapper(kind, "DeadlineForReply", deadline_for_reply)
    _date_wrapper(kind, "ExpectedResponseDate", expected_response_date)
    if question_set:
        qs = ET.SubElement(kind, "QuestionSet")
        for q in question_set:
            _question_el(qs, q)
    _text(kind, "Note", note)
    return _serialize(msg)


def build_pa_initiation_response(
    *,
    header: Header,
    status: Literal["Open", "Closed"],
    relates_to_message_id: str | None = None,
    pa_case_id: str = "",
    question_set: Sequence[PAQuestion] = (),
    deadline_for_reply: date | datetime | None = None,
    reason_codes: Sequence[str] = (),
    note: str = "",
    pa_reference_id: str = "",
    patient: PatientInfo | None = None,
) -> str:
    """PAInitiationResponse (payer side; used by simulators and tests): ``Open`` with PACaseID,
    DeadlineForReply and QuestionSet, or ``Closed`` with a reason."""
    if status == "Open":
        _require_case_id(pa_case_id)
    return _pa_response(
        "PAInitiationResponse", PA_INITIATION_RESPONSE_STATUSES, header=header, status=status,
        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
        pa_reference_id=pa_reference_id, question_set=question_set,
        deadline_for_reply=deadline_for_reply, reason_codes=reason_codes, note=note, patient=patient,
    )


def build_pa_response(
    *,
    header: Header,
    status: Literal["Approved", "Denied", "InProcess", "Open", "Closed", "PartiallyDenied"],
    pa_case_id: str,
    relates_to_message_id: str | None = None,
    authorization_number: str = "",
    effective_date: date | None = None,
    expiration_date: date | None = None,
    reason_codes: Sequence[str] = (),
    denial_reasons: Sequence[str] = (),
    question_set: Sequence[PAQuestion] = (),
    deadline_for_reply: date | datetime | None = None,
    expected_response_date: date | None = None,
    note: str = "",
    pa_reference_id: str = "",
    patient: PatientInfo | None = None,
) -> str:
    """PAResponse (payer side; used by simulators and tests): the PA decision."""
    _require_case_id(pa_case_id)
    return _pa_response(
        "PAResponse", PA_RESPONSE_STATUSES, header=header, status=status,
        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
        pa_reference_id=pa_reference_id, authorization_number=authorization_number,
        effective_date=effective_date, expiration_date=expiration_date, reason_codes=reason_codes,
        denial_reasons=denial_reasons, question_set=question_set, deadline_for_reply=deadline_for_reply,
        expected_response_date=expected_response_date, note=note, patient=patient,
    )


def build_pa_appeal_response(
    *,
    header: Header,
    status: Literal["Approved", "Denied", "Open", "Closed", "PartiallyDenied"],
    pa_case_id: str,
    relates_to_message_id: str | None = None,
    authorization_number: str = "",
    effective_date: date | None = None,
    expiration_date: date | None = None,
    reason_codes: Sequence[str] = (),
    denial_reasons: Sequence[str] = (),
    question_set: Sequence[PAQuestion] = (),
    deadline_for_reply: date | datetime | None = None,
    note: str = "",
    pa_reference_id: str = "",
    patient: PatientInfo | None = None,
) -> str:
    """PAAppealResponse (payer side; used by simulators and tests)."""
    _require_case_id(pa_case_id)
    return _pa_response(
        "PAAppealResponse", PA_APPEAL_RESPONSE_STATUSES, header=header, status=status,
        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
        pa_reference_id=pa_reference_id, authorization_number=authorization_number,
        effective_date=effective_date, expiration_date=expiration_date, reason_codes=reason_codes,
        denial_reasons=denial_reasons, question_set=question_set, deadline_for_reply=deadline_for_reply,
        note=note, patient=patient,
    )


def build_pa_cancel_response(
    *,
    header: Header,
    status: Literal["Approved", "Denied"],
    pa_case_id: str,
    relates_to_message_id: str | None = None,
    reason_codes: Sequence[str] = (),
    note: str = "",
    pa_reference_id: str = "",
) -> str:
    """PACancelResponse (payer side; used by simulators and tests)."""
    _require_case_id(pa_case_id)
    return _pa_response(
        "PACancelResponse", PA_CANCEL_RESPONSE_STATUSES, header=header, status=status,
        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
        pa_reference_id=pa_reference_id, reason_codes=reason_codes, note=note,
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
        if kind is None:
            kind = _child(patient, "AnimalPatient")
            is_animal = kind is not None
        if kind is None:
            raise _reject(self.where("Patient"), "neither HumanPatient nor AnimalPatient")
        kname = "AnimalPatient" if is_animal else "HumanPatient"
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


def parse_message(xml: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ScriptMessage:
    """Read a SCRIPT message into plain data; raise :class:`ScriptError` if it cannot be accepted."""
    root = _load(xml, max_bytes)
    if _local(root.tag) != "Message":
        raise _reject(_local(root.tag) or "root", "root element must be Message")
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
        medication_prescribed=r.medication("MedicationPrescribed"),
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
        qs = _child(tx, "QuestionSet")
        msg.answers = [
            (_get(q, "QuestionID"), _get(q, "Answer"))
            for q in _children(qs, "Question")
            if _child(q, "Answer") is not None
        ]
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
    msg.note = _get(kind, "Note") or msg.note
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
    msg.deadline_for_reply = r.date_at(
        _child(kind, "DeadlineForReply"), f"{where}/DeadlineForReply", keep_time=True
    )
    msg.expected_response_date = r.date_at(
        _child(kind, "ExpectedResponseDate"), f"{where}/ExpectedResponseDate"
    )
    qs = _child(kind, "QuestionSet")
    msg.question_set = r.questions(qs, f"{where}/QuestionSet")


# --------------------------------------------------------------------------------------------
# Optional schema validation
# --------------------------------------------------------------------------------------------


def validate_against_xsd(xml: bytes | str, xsd_dir: str | PathLike[str] | None) -> list[str] | None:
    """Validate ``xml`` against the official NCPDP XSDs if they are available.

    ``xsd_dir`` is the setting ``NCPDP_XSD_DIR``: a directory holding the schema set (the entry
    point ``transport.xsd`` is looked for, case-insensitively) or the path of one .xsd file.

    Returns None — *not checked* — when no directory is configured, it does not exist or holds
    no entry schema, or lxml is not installed (lxml is deliberately not a dependency; install it
    next to the XSDs to turn this on). Otherwise returns the list of schema errors (empty = valid).
    The document is parsed without DTDs, entity expansion or network access.
    """
    if not xsd_dir:
        return None
    path = Path(xsd_dir)
    if path.is_dir():
        entries = [p for p in path.iterdir() if p.name.lower() == "transport.xsd"]
        if not entries:
            return None
        path = entries[0]
    elif not path.is_file():
        return None
    try:
        from lxml import etree as lxml_etree  # optional, not a project dependency
    except ImportError:
        return None
    schema_parser = lxml_etree.XMLParser(resolve_entities=False, no_network=True)
    schema = lxml_etree.XMLSchema(lxml_etree.parse(str(path), schema_parser))
    doc_parser = lxml_etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    if isinstance(xml, str):  # re-encode as UTF-8 and drop a declaration naming another encoding
        data = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", xml.lstrip("\ufeff").encode("utf-8"))
    else:
        data = xml
    try:
        doc = lxml_etree.fromstring(data, doc_parser)
    except lxml_etree.XMLSyntaxError as exc:
        return [f"not well-formed: {exc}"]
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
