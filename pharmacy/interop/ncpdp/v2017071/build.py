"""SCRIPT 2017071 builders: element order, cardinality and types as the 2017071 schema has them.

Each ``_write_*`` function writes one schema type in its sequence order. Where a transaction uses
a restricted variant of a type (a mandatory Address, a mandatory NPI …) the variant is a keyword
argument, and a missing mandatory value is refused with :class:`ValueRefused` naming the field.
The facts behind each choice are in docs/ncpdp-2017071-schema-findings.md and docs/ncpdp.md
(element order of every transaction; the structural tests in tests/interop/ pin it).

Nothing here reads settings: validation against a member's copy of the XSDs (``NCPDP_XSD_DIR``)
happens in :mod:`pharmacy.interop.ncpdp.schema`, called by the package's public functions.
"""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal

from .. import values as V
from ..common import (
    CANCEL_RESPONSES,
    ERROR_CODES,
    FILL_STATUSES,
    MAX_REASON_CODES,
    NDC_QUALIFIER,
    PA_APPEAL_RESPONSE_STATUSES,
    PA_CANCEL_RESPONSE_STATUSES,
    PA_INITIATION_RESPONSE_STATUSES,
    PA_QUESTION_TYPES,
    PA_RESPONSE_STATUSES,
    RELATES_TO_REQUIRED,
    RENEWAL_RESPONSES,
    STATUS_CODES,
    Attachment,
    CancelResponse,
    FillStatus,
    Header,
    MedicationInfo,
    PAQuestion,
    PatientInfo,
    PharmacyInfo,
    PrescriberInfo,
    RenewalResponse,
    ScriptError,
)
from ..values import ValueRefused

VERSION = "2017071"

#: ``Message`` attributes, all required (transport.xsd MessageType). 2017071 has no namespace.
ENVELOPE_ATTRIBUTES: dict[str, str] = {
    "DatatypesVersion": VERSION,
    "TransportVersion": VERSION,
    "TransactionDomain": "SCRIPT",
    "TransactionVersion": VERSION,
    "StructuresVersion": VERSION,
    "ECLVersion": VERSION,
}

#: RxRenewalResponse Denied ReasonCode (ReasonCode1 in the 2017071 ECL).
RENEWAL_DENIAL_CODES = frozenset({"AA", "AB", "AC", "AD", "AE", "AF", "AG", "AM", "AN", "AP", "BE", "CZ", "DA"})
#: CancelRxResponse Denied ReasonCode (ReasonCode3): AA patient unknown, AB never under care, AC no
#: longer under care, AP already responded by other means, AR unable to cancel — already dispensed.
CANCEL_DENIAL_CODES = frozenset({"AA", "AB", "AC", "AP", "AR"})
#: RxFill ReasonCode per FillStatus (ReasonCode18, ReasonCode21, ReasonCode7).
FILL_REASON_CODES: dict[str, frozenset[str]] = {
    "Dispensed": frozenset({"DF", "DG", "DH", "FT", "FV", "GA", "GB", "GC", "GD", "GE", "GF", "GG", "GH", "GI", "GJ",
                            "GK", "GL"}),
    "PartiallyDispensed": frozenset({"BJ", "DF", "DG", "DH", "FT", "FV", "FW", "FX", "FY", "FZ", "GA", "GB", "GC",
                                     "GD", "GE", "GF", "GG", "GH", "GI", "GJ", "GK", "GL"}),
    "NotDispensed": frozenset({"AA", "AB", "AC", "AD", "AG", "AO", "BF", "BG", "BP", "BQ", "BT", "CS", "DB", "DC",
                               "DD", "DE", "FS"}),
    "Transferred": frozenset(),
}
#: PACancelRequest CancelReasonCode (ReasonCode13) and PA Closed reason codes (ReasonCode10/11).
PA_CANCEL_REASON_CODES = frozenset({"BY", "AC", "BW"})
PA_INITIATION_CLOSED_CODES = frozenset({"BX", "BY", "CC", "CD", "CE", "CF", "CG", "CP", "CY", "FL", "FM", "FN", "FO",
                                        "FP", "FQ", "FR"})
PA_CLOSED_CODES = PA_INITIATION_CLOSED_CODES | {"CH", "CJ", "CK", "CL", "CM", "CN", "CO"}
PA_CANCEL_DENIED_CODES = frozenset({"BY", "BZ", "CA", "CB"})
#: Attachment MIMEType (2017071 MIMEType code set).
ATTACHMENT_MIME_TYPES = frozenset({"application/hl7-sda+xml", "application/x-ccr", "application/pdf",
                                   "application/jpeg", "application/tiff", "application/png"})
#: Quantity CodeListQualifier: 38 original quantity, 40 remaining, 87 received, QS quantity
#: sufficient, CF compound final, UQ, QT.
QUANTITY_QUALIFIERS = frozenset({"38", "40", "87", "QS", "CF", "UQ", "QT"})
#: NCI code for "unspecified" unit (NCPDP QuantityUnitOfMeasure terminology), when we know no better.
UNIT_UNSPECIFIED = "C38046"
#: NonHumanPatient Species/Code (SNOMED CT organism concepts).
SPECIES_SNOMED: dict[str, str] = {
    "canine": "448771007", "dog": "448771007",  # Canis lupus familiaris
    "feline": "448169003", "cat": "448169003",  # Felis catus
    "equine": "388445009", "horse": "388445009",  # Equus caballus
}
#: Veterinarian Specialty (required in 2017071): GP general practice.
VET_SPECIALTY = "GP"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _opt(parent: ET.Element, tag: str, text: str) -> None:
    if text:
        _el(parent, tag, text)


def _date_el(parent: ET.Element, tag: str, value: date | datetime) -> None:
    wrapper = _el(parent, tag)
    if isinstance(value, datetime):
        _el(wrapper, "DateTime", V.datetime_text(f"{tag}/DateTime", value))
    else:
        _el(wrapper, "Date", value.isoformat())


# --- parties ---------------------------------------------------------------------------------------

def _write_name(parent: ET.Element, where: str, last: str, first: str) -> None:
    name = _el(parent, "Name")
    _el(name, "LastName", V.required_text(f"{where}/Name/LastName", last, 35))
    _el(name, "FirstName", V.required_text(f"{where}/Name/FirstName", first, 35))


def _write_address(parent: ET.Element, where: str, info, *, mandatory: bool) -> None:
    """AddressType (all optional) or MandatoryAddressType (line 1, city, state, postal code,
    country required)."""
    w = f"{where}/Address"
    line1 = V.text(f"{w}/AddressLine1", info.address_line1, 40)
    line2 = V.text(f"{w}/AddressLine2", info.address_line2, 40)
    city = V.text(f"{w}/City", info.city, 35)
    state = V.text(f"{w}/StateProvince", info.state, 2)
    postal = V.text(f"{w}/PostalCode", (info.postal_code or "").replace("-", ""), 9)
    if postal and not (postal.isdigit() and len(postal) in (5, 9)):
        raise ValueRefused(f"{w}/PostalCode", f"{info.postal_code!r} is not a 5- or 9-digit ZIP code")
    country = V.text(f"{w}/CountryCode", info.country_code or "US", 2)
    if mandatory:
        for field, value in (("AddressLine1", line1), ("City", city), ("StateProvince", state),
                             ("PostalCode", postal)):
            if not value:
                raise ValueRefused(f"{w}/{field}", "required by the schema and empty")
    elif not (line1 or city or state or postal):
        return
    addr = _el(parent, "Address")
    _opt(addr, "AddressLine1", line1)
    _opt(addr, "AddressLine2", line2)
    _opt(addr, "City", city)
    _opt(addr, "StateProvince", state)
    _opt(addr, "PostalCode", postal)
    _el(addr, "CountryCode", country)


def _write_phone(parent: ET.Element, where: str, number: str, *, mandatory: bool) -> None:
    w = f"{where}/CommunicationNumbers/PrimaryTelephone"
    digits, extension = V.phone(w, number)
    if not digits:
        if mandatory:
            raise ValueRefused(f"{w}/Number", "required by the schema and empty")
        return
    tel = _el(_el(parent, "CommunicationNumbers"), "PrimaryTelephone")
    _el(tel, "Number", digits)
    _opt(tel, "Extension", extension)


def _write_patient(tx: ET.Element, p: PatientInfo | None, *, mandatory_address: bool, where: str) -> None:
    """Patient: HumanPatient or NonHumanPatient (Name, Gender, DateOfBirth, Address,
    CommunicationNumbers; a non-human patient adds Species Text and SNOMED CT Code)."""
    if p is None:
        raise ValueRefused(f"{where}/Patient", "required by the schema in this transaction")
    kind_tag = "NonHumanPatient" if p.is_animal else "HumanPatient"
    w = f"{where}/Patient/{kind_tag}"
    if p.birth_date is None:
        raise ValueRefused(f"{w}/DateOfBirth", "required by the schema and empty")
    kind = _el(_el(tx, "Patient"), kind_tag)
    _write_name(kind, w, p.last_name, p.first_name)
    _el(kind, "Gender", V.code(f"{w}/Gender", p.gender, ("M", "F", "U")))
    _date_el(kind, "DateOfBirth", p.birth_date)
    _write_address(kind, w, p, mandatory=mandatory_address and not p.is_animal)
    _write_phone(kind, w, p.phone, mandatory=False)
    if p.is_animal:
        species_text = V.required_text(f"{w}/Species/Text", p.species, 100)
        species_code = p.species_code or SPECIES_SNOMED.get(species_text.casefold(), "")
        if not species_code:
            raise ValueRefused(f"{w}/Species/Code", f"no SNOMED CT code known for species {species_text!r}")
        species = _el(kind, "Species")
        _el(species, "Text", species_text)
        _el(species, "Code", V.identifier(f"{w}/Species/Code", species_code))


def _write_pharmacy(tx: ET.Element, p: PharmacyInfo | None, *, mandatory_address: bool, where: str) -> None:
    """Pharmacy: Identification (NCPDPID … NPI, both required), BusinessName, Address,
    CommunicationNumbers (required)."""
    w = f"{where}/Pharmacy"
    if p is None:
        raise ValueRefused(w, "required by the schema in this transaction")
    ncpdp_id = V.required_text(f"{w}/Identification/NCPDPID", p.ncpdp_id, 35)
    npi = V.required_text(f"{w}/Identification/NPI", p.npi, 35)
    ph = _el(tx, "Pharmacy")
    ident = _el(ph, "Identification")
    _el(ident, "NCPDPID", ncpdp_id)
    _el(ident, "NPI", npi)
    _el(ph, "BusinessName", V.required_text(f"{w}/BusinessName", p.name, 70))
    _write_address(ph, w, p, mandatory=mandatory_address)
    _write_phone(ph, w, p.phone, mandatory=True)


def _write_prescriber(tx: ET.Element, p: PrescriberInfo | None, *, mandatory_address: bool, where: str) -> None:
    """Prescriber/NonVeterinarian (Identification: StateLicenseNumber … DEANumber … NPI required;
    Name; Address; CommunicationNumbers required) or Prescriber/Veterinarian (StateLicenseNumber
    required, DEANumber; Specialty required)."""
    kind_tag = "Veterinarian" if p is not None and p.is_veterinarian else "NonVeterinarian"
    w = f"{where}/Prescriber/{kind_tag}"
    if p is None:
        raise ValueRefused(f"{where}/Prescriber", "required by the schema in this transaction")
    license_no = V.identifier(f"{w}/Identification/StateLicenseNumber", p.state_license)
    dea = V.identifier(f"{w}/Identification/DEANumber", p.dea)
    kind = _el(_el(tx, "Prescriber"), kind_tag)
    ident = _el(kind, "Identification")
    if p.is_veterinarian:
        if not license_no:
            raise ValueRefused(f"{w}/Identification/StateLicenseNumber", "required for a veterinarian")
        _el(ident, "StateLicenseNumber", license_no)
        _opt(ident, "DEANumber", dea)
        _el(kind, "Specialty", VET_SPECIALTY)
    else:
        npi = V.required_text(f"{w}/Identification/NPI", p.npi, 35)
        _opt(ident, "StateLicenseNumber", license_no)
        _opt(ident, "DEANumber", dea)  # DEANumber comes before NPI in NonVeterinarianID
        _el(ident, "NPI", npi)
    _write_name(kind, w, p.last_name, p.first_name)
    _write_address(kind, w, p, mandatory=mandatory_address)
    _write_phone(kind, w, p.phone, mandatory=True)


# --- medication ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _MedProfile:
    """Which optional MedicationAbstract elements a transaction's medication type takes, and which
    of them it requires (2017071 restrictions of MedicationAbstract)."""

    written_date: str = "required"  # required | optional | none
    last_fill_date: str = "optional"
    substitutions: str = "required"
    refills: str = "required"
    note: bool = True
    sig: str = "required"
    requested_refills: bool = False


NEW_RX_MED = _MedProfile()
PRESCRIBED_MED = _MedProfile()
RENEWAL_DISPENSED_MED = _MedProfile(written_date="optional", last_fill_date="required", refills="none",
                                    requested_refills=True)
RENEWAL_RESPONSE_MED = _MedProfile()
FILL_DISPENSED_MED = _MedProfile(written_date="optional")
PA_MED = _MedProfile(written_date="none", last_fill_date="none", substitutions="optional", refills="none",
                     note=False, sig="optional")


def _write_medication(tx: ET.Element, tag: str, m: MedicationInfo | None, profile: _MedProfile, *, where: str,
                      requested_refills: int | None = None) -> None:
    """DrugDescription, DrugCoded/ProductCode (Code, Qualifier), Quantity (Value,
    CodeListQualifier, QuantityUnitOfMeasure/Code), DaysSupply, WrittenDate, LastFillDate,
    Substitutions, NumberOfRefills, Note, Sig/SigText, PharmacyRequestedRefills — in that order."""
    w = f"{where}/{tag}"
    if m is None:
        raise ValueRefused(w, "required by the schema in this transaction")
    description = V.required_text(f"{w}/DrugDescription", m.description, 105)
    ndc = V.identifier(f"{w}/DrugCoded/ProductCode/Code", m.ndc)
    if m.quantity is None:
        raise ValueRefused(f"{w}/Quantity/Value", "required by the schema and empty")
    quantity = V.number(f"{w}/Quantity/Value", m.quantity, 11)
    qualifier = V.code(f"{w}/Quantity/CodeListQualifier", m.quantity_qualifier or "38", QUANTITY_QUALIFIERS)
    unit = V.identifier(f"{w}/Quantity/QuantityUnitOfMeasure/Code", m.quantity_unit or UNIT_UNSPECIFIED)
    days = V.number(f"{w}/DaysSupply", m.days_supply, 3)
    if days == "0":
        days = ""
    values: dict[str, object] = {}
    for attr, field, mode in (("written_date", "WrittenDate", profile.written_date),
                              ("last_fill_date", "LastFillDate", profile.last_fill_date)):
        value = getattr(m, attr)
        if mode == "required" and value is None:
            raise ValueRefused(f"{w}/{field}", "required by the schema and empty")
        values[field] = value if mode != "none" else None
    substitutions = m.substitutions or ("0" if profile.substitutions == "required" else "")
    if substitutions:
        V.code(f"{w}/Substitutions", substitutions, ("0", "1"))
    refills = ""
    if profile.refills == "required":
        if m.refills is None:
            raise ValueRefused(f"{w}/NumberOfRefills", "required by the schema and empty")
        refills = V.number(f"{w}/NumberOfRefills", m.refills, 2)
    note = V.text(f"{w}/Note", m.note, 210) if profile.note else ""
    sig = V.text(f"{w}/Sig/SigText", m.sig_text, 1000) if profile.sig != "none" else ""
    if profile.sig == "required" and not sig:
        raise ValueRefused(f"{w}/Sig/SigText", "required by the schema and empty")
    requested = ""
    if profile.requested_refills and requested_refills is not None:
        requested = V.number(f"{w}/PharmacyRequestedRefills", requested_refills, 2)

    med = _el(tx, tag)
    _el(med, "DrugDescription", description)
    if ndc:
        code = _el(_el(med, "DrugCoded"), "ProductCode")
        _el(code, "Code", ndc)
        _el(code, "Qualifier", NDC_QUALIFIER)
    qty = _el(med, "Quantity")
    _el(qty, "Value", quantity)
    _el(qty, "CodeListQualifier", qualifier)
    _el(_el(qty, "QuantityUnitOfMeasure"), "Code", unit)
    _opt(med, "DaysSupply", days)
    for field in ("WrittenDate", "LastFillDate"):
        if values[field] is not None:
            _date_el(med, field, values[field])
    _opt(med, "Substitutions", substitutions)
    _opt(med, "NumberOfRefills", refills)
    _opt(med, "Note", note)
    if sig:
        _el(_el(med, "Sig"), "SigText", sig)
    _opt(med, "PharmacyRequestedRefills", requested)


# --- envelope --------------------------------------------------------------------------------------

#: Answers (Status, Error, Verify) echo the sender's identifiers: they are made printable and cut
#: rather than refused, so that any message we received can be answered.
ANSWERS = frozenset({"Status", "Error", "Verify"})


def _envelope(header: Header, transaction: str) -> tuple[ET.Element, ET.Element]:
    """``<Message …><Header>To, From, MessageID, RelatesToMessageID, SentTime, SenderSoftware,
    RxReferenceNumber, PrescriberOrderNumber</Header><Body><transaction/></Body></Message>``."""
    if transaction in RELATES_TO_REQUIRED and not header.relates_to_message_id:
        raise ValueRefused("Header/RelatesToMessageID", f"mandatory on {transaction}")
    if transaction in ANSWERS:
        def echo(field: str, value: str, max_length: int) -> str:
            return V.lossy_text(value, max_length) or ("UNKNOWN" if value else "")
    else:
        def echo(field: str, value: str, max_length: int) -> str:
            return V.text(field, value, max_length)
    msg = ET.Element("Message", ENVELOPE_ATTRIBUTES)
    h = _el(msg, "Header")
    to_id, from_id = echo("Header/To", header.to.id, 255), echo("Header/From", header.from_.id, 255)
    if not (to_id and from_id):
        raise ValueRefused("Header/To" if not to_id else "Header/From", "required by the schema and empty")
    _el(h, "To", to_id, Qualifier=header.to.qualifier)
    _el(h, "From", from_id, Qualifier=header.from_.qualifier)
    _el(h, "MessageID", V.required_text("Header/MessageID", header.message_id, 35))
    _opt(h, "RelatesToMessageID", echo("Header/RelatesToMessageID", header.relates_to_message_id, 35))
    _el(h, "SentTime", V.datetime_text("Header/SentTime", header.sent_time))
    sw = _el(h, "SenderSoftware")
    s = header.sender_software
    _el(sw, "SenderSoftwareDeveloper", V.required_text("Header/SenderSoftware/SenderSoftwareDeveloper",
                                                       s.developer, 35))
    _el(sw, "SenderSoftwareProduct", V.required_text("Header/SenderSoftware/SenderSoftwareProduct", s.product, 35))
    _el(sw, "SenderSoftwareVersionRelease", V.required_text("Header/SenderSoftware/SenderSoftwareVersionRelease",
                                                            s.version, 50))
    _opt(h, "RxReferenceNumber", echo("Header/RxReferenceNumber", header.rx_reference_number, 35))
    _opt(h, "PrescriberOrderNumber", echo("Header/PrescriberOrderNumber", header.prescriber_order_number, 35))
    body = _el(msg, "Body")
    return msg, _el(body, transaction)


def serialize(msg: ET.Element) -> str:
    ET.indent(msg, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(msg, encoding="unicode") + "\n"


def _with_relates(header: Header, relates_to_message_id: str | None) -> Header:
    if relates_to_message_id is not None:
        return replace(header, relates_to_message_id=relates_to_message_id)
    return header


def _reason_codes(parent: ET.Element, codes: Sequence[str], *, table: frozenset[str], where: str,
                  tag: str = "ReasonCode", at_least_one: bool = False) -> None:
    codes = list(codes)
    if len(codes) > MAX_REASON_CODES:
        raise ValueRefused(f"{where}/{tag}", f"at most {MAX_REASON_CODES} codes, got {len(codes)}")
    if at_least_one and not codes:
        raise ValueRefused(f"{where}/{tag}", "at least one code is required")
    for c in codes:
        _el(parent, tag, V.code(f"{where}/{tag}", c, table))


# --- prescriber/pharmacy transactions --------------------------------------------------------------

def build_new_rx(*, header: Header, patient: PatientInfo, pharmacy: PharmacyInfo, prescriber: PrescriberInfo,
                 medication: MedicationInfo) -> str:
    """NewRx: Patient (mandatory address), Pharmacy, Prescriber (mandatory address),
    MedicationPrescribed (NewRxPrescribedMedication)."""
    w = "Body/NewRx"
    msg, tx = _envelope(header, "NewRx")
    _write_patient(tx, patient, mandatory_address=True, where=w)
    _write_pharmacy(tx, pharmacy, mandatory_address=False, where=w)
    _write_prescriber(tx, prescriber, mandatory_address=True, where=w)
    _write_medication(tx, "MedicationPrescribed", medication, NEW_RX_MED, where=w)
    return serialize(msg)


def build_rx_renewal_request(*, header: Header, patient: PatientInfo, pharmacy: PharmacyInfo,
                             prescriber: PrescriberInfo, medication_prescribed: MedicationInfo | None,
                             requested_refills: int, medication_dispensed: MedicationInfo | None = None) -> str:
    """RxRenewalRequest: Patient, Pharmacy (mandatory address), Prescriber, MedicationDispensed
    (required; carries LastFillDate and PharmacyRequestedRefills), MedicationPrescribed (optional)."""
    if isinstance(requested_refills, bool) or not isinstance(requested_refills, int) or requested_refills < 0:
        raise ValueRefused("Body/RxRenewalRequest/MedicationDispensed/PharmacyRequestedRefills",
                           f"must be an integer >= 0, got {requested_refills!r}")
    w = "Body/RxRenewalRequest"
    dispensed = medication_dispensed or medication_prescribed
    msg, tx = _envelope(header, "RxRenewalRequest")
    _write_patient(tx, patient, mandatory_address=False, where=w)
    _write_pharmacy(tx, pharmacy, mandatory_address=True, where=w)
    _write_prescriber(tx, prescriber, mandatory_address=False, where=w)
    _write_medication(tx, "MedicationDispensed", dispensed, RENEWAL_DISPENSED_MED, where=w,
                      requested_refills=requested_refills)
    if medication_prescribed is not None and medication_dispensed is not None:
        _write_medication(tx, "MedicationPrescribed", medication_prescribed, PRESCRIBED_MED, where=w)
    return serialize(msg)


def build_rx_renewal_response(*, header: Header, response: RenewalResponse, relates_to_message_id: str | None = None,
                              reason_codes: Sequence[str] = (), denial_reason: str = "", note: str = "",
                              medication: MedicationInfo | None = None, patient: PatientInfo | None = None,
                              pharmacy: PharmacyInfo | None = None, prescriber: PrescriberInfo | None = None) -> str:
    """RxRenewalResponse: Response (Approved | ApprovedWithChanges | Denied | Replace), Patient,
    Pharmacy, Prescriber, MedicationResponse — all required in every outcome. A Denied response
    carries ReasonCode (≤ 10, ReasonCode1) and/or DenialReason; the others a Note (≤ 70).
    ``DeniedNewPrescriptionToFollow`` is not sent in 2017071 (schema annotation)."""
    header = _with_relates(header, relates_to_message_id)
    w = "Body/RxRenewalResponse"
    if response not in RENEWAL_RESPONSES:
        raise ValueRefused(f"{w}/Response", f"{response!r} is not one of {RENEWAL_RESPONSES}")
    rw = f"{w}/Response/{response}"
    if response == "Denied":
        if not reason_codes and not V.text(f"{rw}/DenialReason", denial_reason):
            raise ValueRefused(f"{rw}/ReasonCode", "Denied needs a ReasonCode or a DenialReason")
        if note:
            raise ValueRefused(f"{rw}/Note", "a Denied response has no Note; use DenialReason")
    elif reason_codes or denial_reason:
        raise ValueRefused(f"{rw}/ReasonCode", "ReasonCode/DenialReason belong to a Denied response only")
    if response == "ApprovedWithChanges" and medication is not None and medication.refills is None:
        raise ValueRefused(f"{w}/MedicationResponse/NumberOfRefills", "ApprovedWithChanges needs the new number")
    msg, tx = _envelope(header, "RxRenewalResponse")
    kind = _el(_el(tx, "Response"), response)
    if response == "Denied":
        _reason_codes(kind, reason_codes, table=RENEWAL_DENIAL_CODES, where=rw)
        _opt(kind, "DenialReason", V.text(f"{rw}/DenialReason", denial_reason))
    else:
        _opt(kind, "Note", V.text(f"{rw}/Note", note, 70))
    _write_patient(tx, patient, mandatory_address=False, where=w)
    _write_pharmacy(tx, pharmacy, mandatory_address=False, where=w)
    _write_prescriber(tx, prescriber, mandatory_address=False, where=w)
    _write_medication(tx, "MedicationResponse", medication, RENEWAL_RESPONSE_MED, where=w)
    return serialize(msg)


def build_rx_fill(*, header: Header, fill_status: FillStatus, relates_to_message_id: str | None = None,
                  reason_code: str = "", note: str = "", medication_dispensed: MedicationInfo | None = None,
                  medication_prescribed: MedicationInfo | None = None, patient: PatientInfo | None = None,
                  pharmacy: PharmacyInfo | None = None, prescriber: PrescriberInfo | None = None) -> str:
    """RxFill: FillStatus (Dispensed | PartiallyDispensed | NotDispensed | Transferred), Patient,
    Pharmacy (mandatory address), Prescriber, MedicationDispensed, MedicationPrescribed.
    NotDispensed carries a ReasonCode (ReasonCode7) and no Note."""
    header = _with_relates(header, relates_to_message_id)
    w = "Body/RxFill"
    if fill_status not in FILL_STATUSES:
        raise ValueRefused(f"{w}/FillStatus", f"{fill_status!r} is not one of {tuple(FILL_STATUSES)}")
    fw = f"{w}/FillStatus/{fill_status}"
    if fill_status in ("Dispensed", "PartiallyDispensed") and medication_dispensed is None:
        raise ValueRefused(f"{w}/MedicationDispensed", f"{fill_status} needs MedicationDispensed")
    if medication_dispensed is None and medication_prescribed is None:
        raise ValueRefused(f"{w}/MedicationPrescribed", "an RxFill names the medication")
    if fill_status == "NotDispensed" and note:
        raise ValueRefused(f"{fw}/Note", "not allowed in NotDispensed; use ReasonCode")
    msg, tx = _envelope(header, "RxFill")
    kind = _el(_el(tx, "FillStatus"), fill_status)
    reason = V.code(f"{fw}/ReasonCode", reason_code, FILL_REASON_CODES[fill_status]) if reason_code else ""
    note_text = V.text(f"{fw}/Note", note, 70)
    if fill_status == "PartiallyDispensed":
        _opt(kind, "ReasonCode", reason)
        _opt(kind, "Note", note_text)
    else:
        _opt(kind, "Note", note_text)
        _opt(kind, "ReasonCode", reason)
    _write_patient(tx, patient, mandatory_address=False, where=w)
    _write_pharmacy(tx, pharmacy, mandatory_address=True, where=w)
    _write_prescriber(tx, prescriber, mandatory_address=False, where=w)
    if medication_dispensed is not None:
        _write_medication(tx, "MedicationDispensed", medication_dispensed, FILL_DISPENSED_MED, where=w)
    if medication_prescribed is not None:
        _write_medication(tx, "MedicationPrescribed", medication_prescribed, PRESCRIBED_MED, where=w)
    return serialize(msg)


def build_cancel_rx(*, header: Header, patient: PatientInfo, pharmacy: PharmacyInfo | None,
                    prescriber: PrescriberInfo, medication: MedicationInfo, note: str = "") -> str:
    """CancelRx: Patient, Pharmacy, Prescriber, MedicationPrescribed. CancelRx has no Note of its
    own in 2017071: the reason rides in MedicationPrescribed/Note (≤ 210)."""
    w = "Body/CancelRx"
    if note:
        medication = replace(medication, note=V.text(f"{w}/MedicationPrescribed/Note", note, 210))
    msg, tx = _envelope(header, "CancelRx")
    _write_patient(tx, patient, mandatory_address=False, where=w)
    if pharmacy is not None:
        _write_pharmacy(tx, pharmacy, mandatory_address=False, where=w)
    _write_prescriber(tx, prescriber, mandatory_address=False, where=w)
    _write_medication(tx, "MedicationPrescribed", medication, PRESCRIBED_MED, where=w)
    return serialize(msg)


def build_cancel_rx_response(*, header: Header, response: CancelResponse, relates_to_message_id: str | None = None,
                             reason_codes: Sequence[str] = (), denial_reason: str = "", note: str = "",
                             **_ignored: object) -> str:
    """CancelRxResponse: only Response (Approved with Note ≤ 70; Denied with ReasonCode from
    AA, AB, AC, AP, AR and DenialReason). The schema allows no Patient or medication here."""
    header = _with_relates(header, relates_to_message_id)
    w = "Body/CancelRxResponse"
    if response not in CANCEL_RESPONSES:
        raise ValueRefused(f"{w}/Response", f"{response!r} is not one of {CANCEL_RESPONSES}")
    rw = f"{w}/Response/{response}"
    if response == "Approved" and (reason_codes or denial_reason):
        raise ValueRefused(f"{rw}/ReasonCode", "ReasonCode/DenialReason belong to a Denied response only")
    if response == "Denied" and note:
        raise ValueRefused(f"{rw}/Note", "a Denied response has no Note; use DenialReason")
    msg, tx = _envelope(header, "CancelRxResponse")
    kind = _el(_el(tx, "Response"), response)
    if response == "Denied":
        _reason_codes(kind, reason_codes, table=CANCEL_DENIAL_CODES, where=rw)
        _opt(kind, "DenialReason", V.text(f"{rw}/DenialReason", denial_reason))
    else:
        _opt(kind, "Note", V.text(f"{rw}/Note", note, 70))
    return serialize(msg)


def build_status(*, header: Header, relates_to_message_id: str | None = None, code: str = "010",
                 description: str = "") -> str:
    """Status: Code (000, 001, 002, 003, 005, 010), Description (≤ 70)."""
    header = _with_relates(header, relates_to_message_id)
    msg, tx = _envelope(header, "Status")
    _el(tx, "Code", V.code("Body/Status/Code", code, tuple(STATUS_CODES)))
    # our own words: made printable ASCII and cut to the schema's 70 rather than refused
    _opt(tx, "Description", V.lossy_text(description, 70))
    return serialize(msg)


#: Error DescriptionCode code set (2017071).
ERROR_DESCRIPTION_CODES = frozenset({"008", "103", "134", "144", "210", "220", "500", "4000", "4010", "4020",
                                     "4030", "4040", "1000", "2000", "3000"})


def build_error(*, header: Header, code: str, relates_to_message_id: str | None = None, description_code: str = "",
                description: str = "") -> str:
    """Error: Code (600, 601, 602, 700, 900), DescriptionCode, Description (printable ASCII)."""
    header = _with_relates(header, relates_to_message_id)
    msg, tx = _envelope(header, "Error")
    _el(tx, "Code", V.code("Body/Error/Code", code, tuple(ERROR_CODES)))
    if description_code in ERROR_DESCRIPTION_CODES:  # a code outside the set is left out, never sent
        _el(tx, "DescriptionCode", description_code)
    # the reason may quote what the sender sent: anything without a printable-ASCII form becomes "?"
    _opt(tx, "Description", V.lossy_text(description, 2000))
    return serialize(msg)


def build_error_for(exc: ScriptError, *, header: Header) -> str:
    code = exc.description_code if exc.description_code in ERROR_DESCRIPTION_CODES else ""
    return build_error(header=header, code=exc.code, description_code=code, description=exc.description)


def build_verify(*, header: Header, relates_to_message_id: str | None = None) -> str:
    """Verify: an empty body (VerifyStatus is optional) relating to the message verified."""
    header = _with_relates(header, relates_to_message_id)
    msg, _tx = _envelope(header, "Verify")
    return serialize(msg)


# --- ePA -------------------------------------------------------------------------------------------

@dataclass
class PAContact:
    """Question set header facts a payer sends (QuestionSetHeader) and a PARequest echoes."""

    question_set_id: str = "QS1"
    title: str = "Prior authorization questions"
    description: str = "Questions for this prior authorization request"
    phone: str = "8005550100"
    attachment_required: bool = False


def _pa_parties(tx: ET.Element, *, where: str, request_reference: str, pa_reference_id: str,
                patient: PatientInfo | None, pharmacy: PharmacyInfo | None, prescriber: PrescriberInfo | None,
                medication: MedicationInfo | None) -> None:
    """PARequestAbstract / PAResponseAbstract: RequestReferenceNumber, PAReferenceID (required),
    Patient (mandatory address), Pharmacy, Prescriber (mandatory address), MedicationPrescribed."""
    _opt(tx, "RequestReferenceNumber", V.identifier(f"{where}/RequestReferenceNumber", request_reference))
    _el(tx, "PAReferenceID", V.required_text(f"{where}/PAReferenceID", pa_reference_id, 35))
    _write_patient(tx, patient, mandatory_address=True, where=where)
    if pharmacy is not None:
        _write_pharmacy(tx, pharmacy, mandatory_address=False, where=where)
    _write_prescriber(tx, prescriber, mandatory_address=True, where=where)
    _write_medication(tx, "MedicationPrescribed", medication, PA_MED, where=where)


def _attachment(tx: ET.Element, attachments: Sequence[Attachment], where: str) -> None:
    """AttachmentWithControlNumber [0..1]: AttachmentSource, AttachmentData (base64), MIMEType
    (pdf, jpeg, tiff, png, CCR, SDA only)."""
    attachments = list(attachments)
    if not attachments:
        return
    w = f"{where}/Attachment"
    if len(attachments) > 1:
        raise ValueRefused(w, f"the schema allows one attachment, got {len(attachments)}")
    a = attachments[0]
    mime = V.code(f"{w}/MIMEType", a.mime_type, ATTACHMENT_MIME_TYPES)
    el = _el(tx, "Attachment")
    _el(el, "AttachmentSource", V.required_text(f"{w}/AttachmentSource", a.file_name))
    _el(el, "AttachmentData", base64.b64encode(a.data).decode("ascii"))
    _el(el, "MIMEType", mime)


def _phone_only(parent: ET.Element, tag: str, where: str, number: str) -> None:
    digits, extension = V.phone(f"{where}/{tag}/PrimaryTelephone", number)
    if not digits:
        raise ValueRefused(f"{where}/{tag}/PrimaryTelephone/Number", "required by the schema and empty")
    tel = _el(_el(parent, tag), "PrimaryTelephone")
    _el(tel, "Number", digits)
    _opt(tel, "Extension", extension)


def _question_set_header(parent: ET.Element, contact: PAContact, where: str, *, comment: str = "") -> None:
    h = _el(parent, "Header")
    _el(h, "QuestionSetID", V.required_text(f"{where}/QuestionSetID", contact.question_set_id, 70))
    _el(h, "QuestionSetTitle", V.required_text(f"{where}/QuestionSetTitle", contact.title, 70))
    _el(h, "QuestionSetDescription", V.required_text(f"{where}/QuestionSetDescription", contact.description, 2000))
    _phone_only(h, "QuestionSetContactCommunicationNumber", where, contact.phone)
    _el(h, "AttachementRequired", "Y" if contact.attachment_required else "N")
    _opt(h, "QuestionSetComment", V.text(f"{where}/QuestionSetComment", comment, 2000))


def _question(parent: ET.Element, q: PAQuestion, seq: int, where: str, *, answer: str | None = None,
              for_request: bool = False) -> None:
    """QuestionDetail: QuestionID, SequenceNumber, QuestionText, QuestionType/<kind> (Select with
    SelectMultiple and ≥ 2 Choice; Date with IsDateTimeRequired; Numeric with IsNumeric; FreeText
    with IsFreeText), and in a request the Answer."""
    w = f"{where}/Question[{seq}]"
    if q.type not in PA_QUESTION_TYPES:
        raise ValueRefused(f"{w}/QuestionType", f"{q.type!r} is not one of {PA_QUESTION_TYPES}")
    el = _el(parent, "Question")
    _el(el, "QuestionID", V.required_text(f"{w}/QuestionID", q.id, 35))
    _el(el, "SequenceNumber", str(seq))
    _el(el, "QuestionText", V.required_text(f"{w}/QuestionText", q.text, 2000))
    kind = _el(_el(el, "QuestionType"), q.type)
    if q.type == "Select":
        if len(q.choices) < 2:
            raise ValueRefused(f"{w}/QuestionType/Select/Choice", "a Select question needs at least two choices")
        _el(kind, "SelectMultiple", "N")
        for i, (choice_id, choice_text) in enumerate(q.choices, 1):
            c = _el(kind, "Choice")
            _el(c, "ChoiceID", V.required_text(f"{w}/Choice[{i}]/ChoiceID", choice_id, 35))
            _el(c, "SequenceNumber", str(i))
            _el(c, "ChoiceText", V.required_text(f"{w}/Choice[{i}]/ChoiceText", choice_text, 2000))
            _el(c, "AdditionalFreeTextIndicator", "NA")
        if answer:
            ids = {cid for cid, _ in q.choices}
            if answer not in ids:
                raise ValueRefused(f"{w}/QuestionType/Select/Answer",
                                   f"{answer!r} is not one of the choices {sorted(ids)}")
            _el(_el(_el(kind, "Answer"), "PrescriberProvidedAnswer"), "ChoiceID", answer)
    elif q.type == "Date":
        # request (DateTypeForRequest): Date/IsDateTimeRequired; response (DateTypeFlag): IsDateTimeRequired
        _el(_el(kind, "Date") if for_request else kind, "IsDateTimeRequired", "N")
        if answer:
            try:
                answered = date.fromisoformat(answer.strip())
            except ValueError:
                raise ValueRefused(f"{w}/QuestionType/Date/Answer", f"{answer!r} is not a date (YYYY-MM-DD)") from None
            _date_el(_el(kind, "Answer"), "PrescriberProvidedAnswer", answered)
    elif q.type == "Numeric":
        _el(kind, "IsNumeric", "Y")
        if answer:
            text = answer.strip()
            if not _is_signed_number(text) or len(text) > 18:
                raise ValueRefused(f"{w}/QuestionType/Numeric/Answer", f"{answer!r} is not a number")
            _el(_el(kind, "Answer"), "PrescriberProvidedNumericAnswer", text)
    else:
        _el(kind, "IsFreeText", "Y")
        if answer:
            _el(_el(kind, "Answer"), "PrescriberProvidedAnswer",
                V.required_text(f"{w}/QuestionType/FreeText/Answer", answer, 2000))


def _is_signed_number(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    whole, _, frac = body.partition(".")
    return whole.isdigit() and (frac.isdigit() if "." in body else True)


def build_pa_initiation_request(*, header: Header, patient: PatientInfo, prescriber: PrescriberInfo,
                                medication: MedicationInfo, pharmacy: PharmacyInfo | None = None,
                                pa_reference_id: str = "", note: str = "", request_reference: str = "") -> str:
    """PAInitiationRequest: PAReferenceID first, then the PA parties; no Note in 2017071 (the
    letter goes with the PARequest)."""
    w = "Body/PAInitiationRequest"
    if note:
        raise ValueRefused(f"{w}/Note", "PAInitiationRequest carries no note; send it with the PARequest")
    msg, tx = _envelope(header, "PAInitiationRequest")
    _pa_parties(tx, where=w, request_reference=request_reference, pa_reference_id=pa_reference_id,
                patient=patient, pharmacy=pharmacy, prescriber=prescriber, medication=medication)
    return serialize(msg)


def build_pa_request(*, header: Header, pa_case_id: str, answers: Sequence[tuple[str, str]], patient: PatientInfo,
                     prescriber: PrescriberInfo, medication: MedicationInfo, pharmacy: PharmacyInfo | None = None,
                     pa_reference_id: str = "", attachments: Sequence[Attachment] = (), note: str = "",
                     questions: Sequence[PAQuestion] = (), deadline_for_reply: date | datetime | None = None,
                     contact: PAContact | None = None, request_reference: str = "") -> str:
    """PARequest: PA parties, Attachment [0..1], Request/SolicitedModel (PACaseID,
    DeadlineForReply, QuestionSet: Header with the note as QuestionSetComment, each Question as the
    payer asked it with its Answer). ``questions`` are the payer's questions; an answer to a
    question we were not asked is refused."""
    w = "Body/PARequest"
    if not V.text(f"{w}/Request/SolicitedModel/PACaseID", pa_case_id):
        raise ValueRefused(f"{w}/Request/SolicitedModel/PACaseID", "required by the schema and empty")
    asked = {q.id: q for q in questions}
    answered = list(answers)
    for qid, _ in answered:
        if qid not in asked:
            asked[qid] = PAQuestion(id=qid, text=f"Question {qid}", type="FreeText")
    if not asked:
        raise ValueRefused(f"{w}/Request/SolicitedModel/QuestionSet/Question", "at least one question is required")
    answer_of = dict(answered)
    msg, tx = _envelope(header, "PARequest")
    _pa_parties(tx, where=w, request_reference=request_reference, pa_reference_id=pa_reference_id,
                patient=patient, pharmacy=pharmacy, prescriber=prescriber, medication=medication)
    _attachment(tx, attachments, w)
    model = _el(_el(tx, "Request"), "SolicitedModel")
    mw = f"{w}/Request/SolicitedModel"
    _el(model, "PACaseID", V.required_text(f"{mw}/PACaseID", pa_case_id, 35))
    _date_el(model, "DeadlineForReply", deadline_for_reply or header.sent_time.date())
    qs = _el(model, "QuestionSet")
    _question_set_header(qs, contact or PAContact(), f"{mw}/QuestionSet/Header", comment=note)
    for seq, q in enumerate(asked.values(), 1):
        _question(qs, q, seq, f"{mw}/QuestionSet", answer=answer_of.get(q.id), for_request=True)
    return serialize(msg)


def build_pa_appeal_request(*, header: Header, pa_case_id: str, patient: PatientInfo, prescriber: PrescriberInfo,
                            medication: MedicationInfo, note: str = "", answers: Sequence[tuple[str, str]] = (),
                            attachments: Sequence[Attachment] = (), pharmacy: PharmacyInfo | None = None,
                            pa_reference_id: str = "", request_reference: str = "") -> str:
    """PAAppealRequest: PA parties, Attachment [0..1], Request (PACaseID, PANote ≤ 2000 — the
    appeal's justification)."""
    w = "Body/PAAppealRequest"
    if answers:
        raise ValueRefused(f"{w}/Request/QuestionSet", "answers go with a PARequest; an appeal carries PANote")
    msg, tx = _envelope(header, "PAAppealRequest")
    _pa_parties(tx, where=w, request_reference=request_reference, pa_reference_id=pa_reference_id,
                patient=patient, pharmacy=pharmacy, prescriber=prescriber, medication=medication)
    _attachment(tx, attachments, w)
    req = _el(tx, "Request")
    _el(req, "PACaseID", V.required_text(f"{w}/Request/PACaseID", pa_case_id, 35))
    _opt(req, "PANote", V.text(f"{w}/Request/PANote", note, 2000))
    return serialize(msg)


def build_pa_cancel_request(*, header: Header, pa_case_id: str, patient: PatientInfo, prescriber: PrescriberInfo,
                            medication: MedicationInfo | None = None, reason_code: str = "", note: str = "",
                            pharmacy: PharmacyInfo | None = None, pa_reference_id: str = "",
                            request_reference: str = "") -> str:
    """PACancelRequest: PA parties, Request (PACaseID, CancelReasonCode BY/AC/BW, PANote)."""
    w = "Body/PACancelRequest"
    msg, tx = _envelope(header, "PACancelRequest")
    _pa_parties(tx, where=w, request_reference=request_reference, pa_reference_id=pa_reference_id,
                patient=patient, pharmacy=pharmacy, prescriber=prescriber, medication=medication)
    req = _el(tx, "Request")
    _el(req, "PACaseID", V.required_text(f"{w}/Request/PACaseID", pa_case_id, 35))
    if reason_code:
        _el(req, "CancelReasonCode", V.code(f"{w}/Request/CancelReasonCode", reason_code, PA_CANCEL_REASON_CODES))
    _opt(req, "PANote", V.text(f"{w}/Request/PANote", note, 2000))
    return serialize(msg)


# --- ePA payer side (the test payer and simulators) -------------------------------------------------

def _pa_status(status_el: ET.Element, status: str, transaction: str, *, where: str, pa_case_id: str,
               authorization_number: str, effective_date: date | None, expiration_date: date | None,
               reason_codes: Sequence[str], denial_reasons: Sequence[str], question_set: Sequence[PAQuestion],
               deadline_for_reply: date | datetime | None, expected_response_date: date | None, note: str,
               contact: PAContact, appeal_case_id: str = "") -> None:
    w = f"{where}/{status}"
    kind = _el(status_el, status)
    case_id = V.text(f"{w}/PACaseID", pa_case_id, 35)
    pa_note = "; ".join(x for x in [*(V.text(f"{w}/PANote", r) for r in denial_reasons), V.text(f"{w}/PANote", note)]
                        if x)
    pa_note = V.text(f"{w}/PANote", pa_note, 2000)
    period = None
    if effective_date or expiration_date:
        if not (effective_date and expiration_date):
            raise ValueRefused(f"{w}/AuthorizationPeriod", "needs both EffectiveDate and ExpirationDate")
        period = (effective_date, expiration_date)
    if status != "Closed" and not case_id:
        raise ValueRefused(f"{w}/PACaseID", "required by the schema and empty")

    def _period() -> None:
        if period:
            p = _el(kind, "AuthorizationPeriod")
            _date_el(p, "EffectiveDate", period[0])
            _date_el(p, "ExpirationDate", period[1])

    def _appeal() -> None:
        _el(_el(kind, "Appeal"), "IsEAppealSupported", "Y")

    if status == "Open":
        if not question_set:
            raise ValueRefused(f"{w}/QuestionSet", "an Open response needs questions")
        if deadline_for_reply is None:
            raise ValueRefused(f"{w}/DeadlineForReply", "required by the schema and empty")
        _el(kind, "PACaseID", case_id)
        if transaction == "PAInitiationResponse":
            _date_el(kind, "DeadlineForReply", deadline_for_reply)
            qs = _el(kind, "QuestionSet")
            _question_set_header(qs, contact, f"{w}/QuestionSet/Header")
            for seq, q in enumerate(question_set, 1):
                _question(qs, q, seq, f"{w}/QuestionSet")
        else:
            qs = _el(kind, "MoreInformationRequired")
            _question_set_header(qs, contact, f"{w}/MoreInformationRequired/Header")
            for seq, q in enumerate(question_set, 1):
                _question(qs, q, seq, f"{w}/MoreInformationRequired")
            _date_el(qs, "DeadlineForReply", deadline_for_reply)
        _opt(kind, "PANote", pa_note)
    elif status == "Closed":
        _opt(kind, "PACaseID", case_id)
        table = PA_INITIATION_CLOSED_CODES if transaction == "PAInitiationResponse" else PA_CLOSED_CODES
        tag = "ReasonCode" if transaction == "PAInitiationResponse" else "ClosedReasonCode"
        _reason_codes(kind, reason_codes, table=table, where=w, tag=tag, at_least_one=True)
        _opt(kind, "AuthorizationNumber", V.text(f"{w}/AuthorizationNumber", authorization_number, 140))
        _period()
        _opt(kind, "PANote", pa_note)
    elif status == "Approved":
        _el(kind, "PACaseID", case_id)
        _opt(kind, "AuthorizationNumber", V.text(f"{w}/AuthorizationNumber", authorization_number, 140))
        _period()
        _appeal()
        _opt(kind, "PANote", pa_note)
    elif status == "PartiallyDenied":
        _el(kind, "PACaseID", case_id)
        _opt(kind, "AuthorizationNumber", V.text(f"{w}/AuthorizationNumber", authorization_number, 140))
        _period()
        _appeal()
        _opt(kind, "PANote", pa_note)
    elif status == "Denied":
        _el(kind, "PACaseID", case_id)
        _appeal()
        _opt(kind, "PANote", pa_note)
    elif status == "InProcess":
        _el(kind, "PACaseID", case_id)
        if expected_response_date is not None:
            _date_el(kind, "ExpectedResponseDate", expected_response_date)
        _opt(kind, "PANote", pa_note)
    if transaction == "PAAppealResponse":  # the payer's appeal case ends every appeal outcome
        _el(kind, "AppealCaseID", V.required_text(f"{w}/AppealCaseID", appeal_case_id or case_id, 35))


def _pa_response(transaction: str, allowed: tuple[str, ...], *, header: Header, status: str,
                 relates_to_message_id: str | None, pa_case_id: str, pa_reference_id: str, patient: PatientInfo | None,
                 prescriber: PrescriberInfo | None, medication: MedicationInfo | None,
                 pharmacy: PharmacyInfo | None = None, authorization_number: str = "",
                 effective_date: date | None = None, expiration_date: date | None = None,
                 reason_codes: Sequence[str] = (), denial_reasons: Sequence[str] = (),
                 question_set: Sequence[PAQuestion] = (), deadline_for_reply: date | datetime | None = None,
                 expected_response_date: date | None = None, note: str = "", contact: PAContact | None = None,
                 appeal_case_id: str = "") -> str:
    header = _with_relates(header, relates_to_message_id)
    w = f"Body/{transaction}"
    if status not in allowed:
        raise ValueRefused(f"{w}/Response/ResponseStatus", f"{status!r} is not one of {allowed}")
    if question_set and status != "Open":
        raise ValueRefused(f"{w}/Response/ResponseStatus/{status}", "questions belong to an Open response only")
    if (authorization_number or effective_date or expiration_date) and status not in (
            "Approved", "PartiallyDenied", "Closed"):
        raise ValueRefused(f"{w}/Response/ResponseStatus/{status}/AuthorizationNumber",
                           "authorization details belong to Approved/PartiallyDenied responses only")
    if denial_reasons and status not in ("Denied", "PartiallyDenied"):
        raise ValueRefused(f"{w}/Response/ResponseStatus/{status}/PANote",
                           "denial reasons belong to Denied/PartiallyDenied responses only")
    if expected_response_date is not None and status != "InProcess":
        raise ValueRefused(f"{w}/Response/ResponseStatus/{status}/ExpectedResponseDate",
                           "belongs to an InProcess response only")
    msg, tx = _envelope(header, transaction)
    _pa_parties(tx, where=w, request_reference="", pa_reference_id=pa_reference_id, patient=patient,
                pharmacy=pharmacy, prescriber=prescriber, medication=medication)
    response = _el(tx, "Response")
    status_el = _el(response, "ResponseStatus")
    _pa_status(status_el, status, transaction, where=f"{w}/Response/ResponseStatus", pa_case_id=pa_case_id,
               authorization_number=authorization_number, effective_date=effective_date,
               expiration_date=expiration_date, reason_codes=reason_codes, denial_reasons=denial_reasons,
               question_set=question_set, deadline_for_reply=deadline_for_reply,
               expected_response_date=expected_response_date, note=note, contact=contact or PAContact(),
               appeal_case_id=appeal_case_id)
    return serialize(msg)


def build_pa_initiation_response(*, header: Header, status: Literal["Open", "Closed"], patient: PatientInfo,
                                 prescriber: PrescriberInfo, medication: MedicationInfo,
                                 relates_to_message_id: str | None = None, pa_case_id: str = "",
                                 question_set: Sequence[PAQuestion] = (),
                                 deadline_for_reply: date | datetime | None = None, reason_codes: Sequence[str] = (),
                                 note: str = "", pa_reference_id: str = "", pharmacy: PharmacyInfo | None = None,
                                 contact: PAContact | None = None) -> str:
    """PAInitiationResponse (payer side): the request's PA parties echoed, then Response/
    ResponseStatus Open (PACaseID, DeadlineForReply, QuestionSet) or Closed (ReasonCode ≥ 1)."""
    return _pa_response("PAInitiationResponse", PA_INITIATION_RESPONSE_STATUSES, header=header, status=status,
                        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
                        pa_reference_id=pa_reference_id, patient=patient, prescriber=prescriber,
                        medication=medication, pharmacy=pharmacy, question_set=question_set,
                        deadline_for_reply=deadline_for_reply, reason_codes=reason_codes, note=note, contact=contact)


def build_pa_response(*, header: Header, status: str, pa_case_id: str, patient: PatientInfo,
                      prescriber: PrescriberInfo, medication: MedicationInfo, relates_to_message_id: str | None = None,
                      authorization_number: str = "", effective_date: date | None = None,
                      expiration_date: date | None = None, reason_codes: Sequence[str] = (),
                      denial_reasons: Sequence[str] = (), question_set: Sequence[PAQuestion] = (),
                      deadline_for_reply: date | datetime | None = None, expected_response_date: date | None = None,
                      note: str = "", pa_reference_id: str = "", pharmacy: PharmacyInfo | None = None,
                      contact: PAContact | None = None) -> str:
    """PAResponse (payer side): Approved, Denied, InProcess, Open (MoreInformationRequired),
    Closed (ClosedReasonCode ≥ 1), PartiallyDenied. Denial reasons travel in PANote."""
    return _pa_response("PAResponse", PA_RESPONSE_STATUSES, header=header, status=status,
                        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
                        pa_reference_id=pa_reference_id, patient=patient, prescriber=prescriber,
                        medication=medication, pharmacy=pharmacy, authorization_number=authorization_number,
                        effective_date=effective_date, expiration_date=expiration_date, reason_codes=reason_codes,
                        denial_reasons=denial_reasons, question_set=question_set,
                        deadline_for_reply=deadline_for_reply, expected_response_date=expected_response_date,
                        note=note, contact=contact)


def build_pa_appeal_response(*, header: Header, status: str, pa_case_id: str, patient: PatientInfo,
                             prescriber: PrescriberInfo, medication: MedicationInfo,
                             relates_to_message_id: str | None = None, authorization_number: str = "",
                             effective_date: date | None = None, expiration_date: date | None = None,
                             reason_codes: Sequence[str] = (), denial_reasons: Sequence[str] = (),
                             question_set: Sequence[PAQuestion] = (),
                             deadline_for_reply: date | datetime | None = None, note: str = "",
                             pa_reference_id: str = "", pharmacy: PharmacyInfo | None = None,
                             contact: PAContact | None = None, appeal_case_id: str = "") -> str:
    """PAAppealResponse (payer side): as PAResponse, each outcome ending with AppealCaseID
    (defaults to the PACaseID)."""
    return _pa_response("PAAppealResponse", PA_APPEAL_RESPONSE_STATUSES, header=header, status=status,
                        relates_to_message_id=relates_to_message_id, pa_case_id=pa_case_id,
                        pa_reference_id=pa_reference_id, patient=patient, prescriber=prescriber,
                        medication=medication, pharmacy=pharmacy, authorization_number=authorization_number,
                        effective_date=effective_date, expiration_date=expiration_date, reason_codes=reason_codes,
                        denial_reasons=denial_reasons, question_set=question_set,
                        deadline_for_reply=deadline_for_reply, note=note, contact=contact,
                        appeal_case_id=appeal_case_id)


def build_pa_cancel_response(*, header: Header, status: str, pa_case_id: str, relates_to_message_id: str | None = None,
                             reason_codes: Sequence[str] = (), note: str = "", pa_reference_id: str = "",
                             **_ignored: object) -> str:
    """PACancelResponse (payer side): PAReferenceID, Response (PACaseID, ResponseStatus Approved
    with PANote, or Denied with ReasonCode BY/BZ/CA/CB and PANote)."""
    header = _with_relates(header, relates_to_message_id)
    w = "Body/PACancelResponse"
    if status not in PA_CANCEL_RESPONSE_STATUSES:
        raise ValueRefused(f"{w}/Response/ResponseStatus", f"{status!r} is not one of {PA_CANCEL_RESPONSE_STATUSES}")
    msg, tx = _envelope(header, "PACancelResponse")
    _el(tx, "PAReferenceID", V.required_text(f"{w}/PAReferenceID", pa_reference_id, 35))
    response = _el(tx, "Response")
    _el(response, "PACaseID", V.required_text(f"{w}/Response/PACaseID", pa_case_id, 35))
    kind = _el(_el(response, "ResponseStatus"), status)
    sw = f"{w}/Response/ResponseStatus/{status}"
    if status == "Denied":
        codes = list(reason_codes)
        if len(codes) > 1:
            raise ValueRefused(f"{sw}/ReasonCode", "at most one code")
        for c in codes:
            _el(kind, "ReasonCode", V.code(f"{sw}/ReasonCode", c, PA_CANCEL_DENIED_CODES))
    elif reason_codes:
        raise ValueRefused(f"{sw}/ReasonCode", "belongs to a Denied response only")
    _opt(kind, "PANote", V.text(f"{sw}/PANote", note, 2000))
    return serialize(msg)


def answers_for(questions: Iterable[PAQuestion], answers: dict[str, str]) -> list[tuple[str, str]]:
    """(QuestionID, answer) pairs in the payer's question order."""
    return [(q.id, answers[q.id]) for q in questions if q.id in answers]
