"""NCPDP SCRIPT: plain data, constants and errors shared by every SCRIPT version's codec.

Pure: no Django, no ORM, no network. Services map the dataclasses here to models; the
version packages (``v2017071``; 2023011 later, see docs/ncpdp.md) turn them into messages and back.

Reading is defensive: any problem raises :class:`ScriptError` carrying the NCPDP Error code to
answer with and a description naming the element at fault:

* ``900`` transaction rejected — the content is bad: not XML, DTD/entities, wrong root element,
  missing or invalid mandatory element (MessageID, SentTime, To/From, RelatesToMessageID …);
* ``601`` receiver unable to process — the message may be fine but we cannot take it: larger than
  ``max_bytes``, a transaction this reader does not know, or another SCRIPT version.
"""
from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

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
    phone: str = ""  # CommunicationNumbers/PrimaryTelephone/Number (+ Extension)
    is_animal: bool = False
    species: str = ""  # NonHumanPatient/Species/Text
    species_code: str = ""  # NonHumanPatient/Species/Code (SNOMED CT); derived from species if empty
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
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country_code: str = "US"


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
    address_line1: str = ""  # the practice's address
    address_line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country_code: str = "US"


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
    quantity_unit: str = ""  # Quantity/QuantityUnitOfMeasure/Code (NCI); C38046 "unspecified" if empty
    quantity_qualifier: str = "38"  # Quantity/CodeListQualifier: 38 original quantity
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
    schema_errors: list[str] = field(default_factory=list, repr=False, compare=False)  # NCPDP_XSD_DIR set

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
