"""NCPDP SCRIPT messages: build them as XML text and read them back as plain data.

Pure: no Django, no ORM, no network. Services map the dataclasses (``common``) to models.

Layout (docs/ncpdp.md has the plan for a second version):

* ``common`` — plain data, code tables and errors shared by every SCRIPT version;
* ``values`` — value rules (printable ASCII, phone digits, lengths, dates): a value the schema
  cannot carry is refused with :class:`ValueRefused` naming the field, before any message exists;
* ``versions`` — which SCRIPT version an inbound message declares;
* ``schema`` — the ``NCPDP_XSD_DIR`` validation seam (lxml, compiled once per process);
* ``v2017071`` — the 2017071 builders (``build``) and reader (``read``).

The functions below are the 2017071 codec (the version this project sends and accepts). Every
message built here is validated against the official XSDs when ``NCPDP_XSD_DIR`` names a member's
copy (:class:`SchemaInvalid` otherwise); every message read is validated too and its errors are
kept on ``ScriptMessage.schema_errors`` (the inbound service decides what to do with them).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from . import schema, values, versions
from .common import (
    CANCEL_RESPONSES,
    DEFAULT_MAX_BYTES,
    DENIAL_REASON_CODES,
    ENVELOPE_ATTRIBUTES,
    ERROR_CODES,
    ERROR_TRANSACTION_REJECTED,
    ERROR_UNABLE_TO_PROCESS,
    FILL_STATUSES,
    FILL_STATUSES_WITH_DISPENSED,
    MAX_REASON_CODES,
    MESSAGE_ID_MAX_LENGTH,
    NDC_QUALIFIER,
    NOT_DISPENSED_REASON_CODES,
    PA_APPEAL_RESPONSE_STATUSES,
    PA_CANCEL_RESPONSE_STATUSES,
    PA_INITIATION_RESPONSE_STATUSES,
    PA_QUESTION_TYPES,
    PA_RESPONSE_STATUSES,
    PARTY_QUALIFIERS,
    RELATES_TO_REQUIRED,
    RENEWAL_RESPONSES,
    SCRIPT_VERSION,
    STATUS_CODES,
    TRANSACTIONS,
    Attachment,
    CancelResponse,
    FillStatus,
    Header,
    MedicationInfo,
    PAQuestion,
    Party,
    PatientInfo,
    PharmacyInfo,
    PrescriberInfo,
    RenewalResponse,
    ResponseInfo,
    ScriptError,
    ScriptMessage,
    SenderSoftware,
    new_message_id,
    reply_header,
)
from .schema import SchemaInvalid, validate_against_xsd
from .v2017071 import build as _b2017071
from .v2017071 import read as _r2017071
from .v2017071.build import (
    ATTACHMENT_MIME_TYPES,
    CANCEL_DENIAL_CODES,
    FILL_REASON_CODES,
    PA_CANCEL_REASON_CODES,
    RENEWAL_DENIAL_CODES,
    PAContact,
    answers_for,
)
from .values import ValueRefused

#: SCRIPT versions this receiver reads, and the codec (builders + reader) of each. A second
#: version (2023011) adds its package here; partners choose theirs (docs/ncpdp.md).
SUPPORTED_VERSIONS: tuple[str, ...] = ("2017071",)
CODECS = {"2017071": (_b2017071, _r2017071)}


def _validated(transaction: str, builder: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(builder)
    def build(**kwargs) -> str:
        return schema.check_built(builder(**kwargs), transaction)

    return build


build_new_rx = _validated("NewRx", _b2017071.build_new_rx)
build_rx_renewal_request = _validated("RxRenewalRequest", _b2017071.build_rx_renewal_request)
build_rx_renewal_response = _validated("RxRenewalResponse", _b2017071.build_rx_renewal_response)
build_rx_fill = _validated("RxFill", _b2017071.build_rx_fill)
build_cancel_rx = _validated("CancelRx", _b2017071.build_cancel_rx)
build_cancel_rx_response = _validated("CancelRxResponse", _b2017071.build_cancel_rx_response)
build_status = _validated("Status", _b2017071.build_status)
build_error = _validated("Error", _b2017071.build_error)
build_verify = _validated("Verify", _b2017071.build_verify)
build_pa_initiation_request = _validated("PAInitiationRequest", _b2017071.build_pa_initiation_request)
build_pa_request = _validated("PARequest", _b2017071.build_pa_request)
build_pa_appeal_request = _validated("PAAppealRequest", _b2017071.build_pa_appeal_request)
build_pa_cancel_request = _validated("PACancelRequest", _b2017071.build_pa_cancel_request)
build_pa_initiation_response = _validated("PAInitiationResponse", _b2017071.build_pa_initiation_response)
build_pa_response = _validated("PAResponse", _b2017071.build_pa_response)
build_pa_appeal_response = _validated("PAAppealResponse", _b2017071.build_pa_appeal_response)
build_pa_cancel_response = _validated("PACancelResponse", _b2017071.build_pa_cancel_response)


def build_error_for(exc: ScriptError, *, header: Header) -> str:
    """The Error reply for a :class:`ScriptError` raised by :func:`parse_message`."""
    return schema.check_built(_b2017071.build_error_for(exc, header=header), "Error")


def parse_message(xml: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ScriptMessage:
    """Read a SCRIPT message into plain data; :class:`ScriptError` if it cannot be accepted.

    The declared version is checked first: a message in another SCRIPT version (10.6, a
    namespaced 2013071, 2023011 …) is refused with Error 601 saying which version was found and
    which this receiver supports. When ``NCPDP_XSD_DIR`` is set the message is also validated;
    its errors are on ``schema_errors`` (empty when valid or not checked)."""
    root = _r2017071.load(xml, max_bytes=max_bytes)
    declared = versions.require_supported(root, SUPPORTED_VERSIONS)
    _builders, reader = CODECS[declared.version]
    msg = reader.parse_root(root)
    errors = validate_against_xsd(xml)
    msg.schema_errors = errors or []
    return msg


__all__ = [
    "ATTACHMENT_MIME_TYPES", "CANCEL_DENIAL_CODES", "CANCEL_RESPONSES", "CODECS", "DEFAULT_MAX_BYTES",
    "DENIAL_REASON_CODES", "ENVELOPE_ATTRIBUTES", "ERROR_CODES", "ERROR_TRANSACTION_REJECTED",
    "ERROR_UNABLE_TO_PROCESS", "FILL_REASON_CODES", "FILL_STATUSES", "FILL_STATUSES_WITH_DISPENSED",
    "MAX_REASON_CODES", "MESSAGE_ID_MAX_LENGTH", "NDC_QUALIFIER", "NOT_DISPENSED_REASON_CODES",
    "PA_APPEAL_RESPONSE_STATUSES", "PA_CANCEL_REASON_CODES", "PA_CANCEL_RESPONSE_STATUSES",
    "PA_INITIATION_RESPONSE_STATUSES", "PA_QUESTION_TYPES", "PA_RESPONSE_STATUSES", "PARTY_QUALIFIERS",
    "RELATES_TO_REQUIRED", "RENEWAL_DENIAL_CODES", "RENEWAL_RESPONSES", "SCRIPT_VERSION", "STATUS_CODES",
    "SUPPORTED_VERSIONS", "TRANSACTIONS", "Attachment", "CancelResponse", "FillStatus", "Header",
    "MedicationInfo", "PAContact", "PAQuestion", "Party", "PatientInfo", "PharmacyInfo", "PrescriberInfo",
    "RenewalResponse", "ResponseInfo", "SchemaInvalid", "ScriptError", "ScriptMessage", "SenderSoftware",
    "ValueRefused", "answers_for", "build_cancel_rx", "build_cancel_rx_response", "build_error",
    "build_error_for", "build_new_rx", "build_pa_appeal_request", "build_pa_appeal_response",
    "build_pa_cancel_request", "build_pa_cancel_response", "build_pa_initiation_request",
    "build_pa_initiation_response", "build_pa_request", "build_pa_response", "build_rx_fill",
    "build_rx_renewal_request", "build_rx_renewal_response", "build_status", "build_verify", "new_message_id",
    "parse_message", "reply_header", "schema", "validate_against_xsd", "values", "versions",
]
