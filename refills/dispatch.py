"""NCPDP SCRIPT 2017071 messages for refill decisions, written to the outbox in the
decision's transaction (pharmacy/interop/ncpdp/ builds them)."""
from __future__ import annotations

import dataclasses

from django.conf import settings

from pharmacy.errors import DomainError
from pharmacy.interop import ncpdp
from pharmacy.messaging.outbox import new_message_id, outbox_enqueue
from pharmacy.ncpdp_parties import medication_info, patient_info, pharmacy_info, prescriber_info, refused_message

from .models import RefillRequest

CLINIC_ID = "RXHUB"


_patient = patient_info
_prescriber = prescriber_info
_pharmacy = pharmacy_info


def refused(exc: ncpdp.ValueRefused, *, transaction: str) -> DomainError:
    """A value the SCRIPT schema cannot carry, as the domain error views and the API show (409):
    it names the message field so staff can correct the record."""
    return DomainError(refused_message(exc, transaction), code="ncpdp_value_refused")


def _header(request: RefillRequest, pharmacy, message_id: str) -> ncpdp.Header:
    prescriber = request.prescription.prescriber
    return ncpdp.Header(
        to=ncpdp.Party("P", pharmacy.ncpdp_id),
        from_=ncpdp.Party("D", prescriber.npi or prescriber.state_license_number or CLINIC_ID),
        message_id=message_id, rx_reference_number=request.prescription.rx_number,
        prescriber_order_number=f"RR{request.pk}",
    )


def _medication(rx, *, refills: int, quantity=None, days_supply=None) -> ncpdp.MedicationInfo:
    return medication_info(rx, refills=refills, quantity=quantity, days_supply=days_supply)


def _short(text: str, limit: int) -> str:
    """Free text cut to a schema limit for the message (our record keeps all of it)."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def authorization_message(request: RefillRequest, *, response: str, refills: int, reason_codes=(),
                          denial_reason: str = "", note: str = "") -> tuple[str, str, str]:
    """(kind, message_id, xml). A pharmacy's RxRenewalRequest gets an RxRenewalResponse; a
    practice-initiated approval goes out as a NewRx (STANDARDS.md, NCPDP SCRIPT 2017071). A value
    the schema cannot carry raises a DomainError naming the field (nothing is queued)."""
    rx, pharmacy = request.prescription, request.pharmacy or request.prescription.pharmacy
    message_id = new_message_id()
    header = _header(request, pharmacy, message_id)
    quantity = request.approved_quantity or rx.quantity
    days = request.approved_days_supply or rx.days_supply
    med = _medication(rx, refills=refills, quantity=quantity, days_supply=days)
    try:
        if request.pharmacy_message_id:
            if response == "Denied":  # 2017071: a Denied response has DenialReason and no Note
                denial_reason = "; ".join(part for part in (denial_reason, note) if part)
                note = ""
            xml = ncpdp.build_rx_renewal_response(
                header=header, response=response, relates_to_message_id=request.pharmacy_message_id,
                reason_codes=list(reason_codes), denial_reason=denial_reason, note=_short(note, 70),
                medication=med, patient=_patient(rx.patient), pharmacy=_pharmacy(pharmacy),
                prescriber=_prescriber(rx.prescriber))
            return "ncpdp:RxRenewalResponse", message_id, xml
        # ``note``: the agreement and the pharmacist acting under it, what changed (issue 13).
        if note:
            med = dataclasses.replace(med, note=_short(note, 210))  # MedicationPrescribed/Note
        xml = ncpdp.build_new_rx(header=header, patient=_patient(rx.patient), pharmacy=_pharmacy(pharmacy),
                                 prescriber=_prescriber(rx.prescriber), medication=med)
    except ncpdp.ValueRefused as exc:
        raise refused(exc, transaction="RxRenewalResponse" if request.pharmacy_message_id else "NewRx") from exc
    return "ncpdp:NewRx", message_id, xml


def cancel_message(rx, old_pharmacy) -> tuple[str, str]:
    message_id = new_message_id()
    header = ncpdp.Header(to=ncpdp.Party("P", old_pharmacy.ncpdp_id),
                          from_=ncpdp.Party("D", rx.prescriber.npi or rx.prescriber.state_license_number or CLINIC_ID),
                          message_id=message_id, rx_reference_number=rx.rx_number)
    try:
        xml = ncpdp.build_cancel_rx(header=header, patient=_patient(rx.patient), pharmacy=_pharmacy(old_pharmacy),
                                    prescriber=_prescriber(rx.prescriber),
                                    medication=_medication(rx, refills=rx.refills_remaining),
                                    note="Prescription moved to another pharmacy at the patient's request.")
    except ncpdp.ValueRefused as exc:
        raise refused(exc, transaction="CancelRx") from exc
    return message_id, xml


def enqueue_to_pharmacy(
    *, pharmacy, kind: str, message_id: str, xml: str, actor, dedupe_key: str, related, reason: str
):
    transport = pharmacy.outbound_transport if pharmacy.outbound_transport in ("file", "http") else "file"
    destination = pharmacy.outbound_endpoint if transport == "http" else ""
    if pharmacy.outbound_transport == "none":
        transport, destination = "file", settings.RXHUB["OUTBOX_DIR"]
    return outbox_enqueue(kind=kind, payload=xml, transport=transport, destination=destination, actor=actor,
                          reason=reason, message_id=message_id, dedupe_key=dedupe_key,
                          credentials_env=pharmacy.outbound_credentials_env, related=related)
