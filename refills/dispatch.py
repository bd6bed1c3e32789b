"""NCPDP SCRIPT (2017071-shaped) messages for refill decisions, written to the outbox in the
decision's transaction (pharmacy/interop/ncpdp.py builds them)."""
from __future__ import annotations

from django.conf import settings

from pharmacy.interop import ncpdp
from pharmacy.messaging.outbox import new_message_id, outbox_enqueue

from .models import RefillRequest

CLINIC_ID = "RXHUB"


def _patient(p) -> ncpdp.PatientInfo:
    if p.is_animal:
        return ncpdp.PatientInfo(
            last_name=p.last_name,
            first_name=p.first_name,
            gender=p.sex if p.sex in "MFU" else "U",
            birth_date=p.birth_date,
            is_animal=True,
            species=p.species,
            owner_last_name=p.owner_last_name,
            owner_first_name=p.owner_first_name,
        )
    return ncpdp.PatientInfo(last_name=p.last_name, first_name=p.first_name, gender=p.sex if p.sex in "MFU" else "U",
                             birth_date=p.birth_date, address_line1=p.address_line1, city=p.city, state=p.state,
                             postal_code=p.postal_code, phone=p.phone)


def _prescriber(d) -> ncpdp.PrescriberInfo:
    return ncpdp.PrescriberInfo(npi=d.npi or "", dea=d.dea_number, state_license=d.state_license_number,
                                last_name=d.last_name, first_name=d.first_name, phone=d.phone,
                                is_veterinarian=d.is_veterinarian)


def _pharmacy(ph) -> ncpdp.PharmacyInfo:
    return ncpdp.PharmacyInfo(ncpdp_id=ph.ncpdp_id, npi=ph.npi, name=ph.name, phone=ph.phone)


def _header(request: RefillRequest, pharmacy, message_id: str) -> ncpdp.Header:
    prescriber = request.prescription.prescriber
    return ncpdp.Header(
        to=ncpdp.Party("P", pharmacy.ncpdp_id),
        from_=ncpdp.Party("D", prescriber.npi or prescriber.state_license_number or CLINIC_ID),
        message_id=message_id, rx_reference_number=request.prescription.rx_number,
        prescriber_order_number=f"RR{request.pk}",
    )


def _medication(rx, *, refills: int, quantity=None, days_supply=None) -> ncpdp.MedicationInfo:
    drug = rx.drug
    return ncpdp.MedicationInfo(description=str(drug), ndc=drug.ndc or "", quantity=quantity or rx.quantity,
                                days_supply=days_supply or rx.days_supply, written_date=rx.written_date,
                                refills=refills, sig_text=rx.sig)


def authorization_message(request: RefillRequest, *, response: str, refills: int, reason_codes=(),
                          denial_reason: str = "", note: str = "") -> tuple[str, str, str]:
    """(kind, message_id, xml). A pharmacy's RxRenewalRequest gets an RxRenewalResponse; a
    practice-initiated approval goes out as a NewRx (STANDARDS.md, NCPDP SCRIPT 2017071)."""
    rx, pharmacy = request.prescription, request.pharmacy or request.prescription.pharmacy
    message_id = new_message_id()
    header = _header(request, pharmacy, message_id)
    quantity = request.approved_quantity or rx.quantity
    days = request.approved_days_supply or rx.days_supply
    med = _medication(rx, refills=refills, quantity=quantity, days_supply=days)
    if request.pharmacy_message_id:
        xml = ncpdp.build_rx_renewal_response(
            header=header, response=response, relates_to_message_id=request.pharmacy_message_id,
            reason_codes=list(reason_codes), denial_reason=denial_reason, note=note,
            medication=med if response != "Denied" else None, patient=_patient(rx.patient),
            pharmacy=_pharmacy(pharmacy), prescriber=_prescriber(rx.prescriber))
        return "ncpdp:RxRenewalResponse", message_id, xml
    xml = ncpdp.build_new_rx(header=header, patient=_patient(rx.patient), pharmacy=_pharmacy(pharmacy),
                             prescriber=_prescriber(rx.prescriber), medication=med)
    return "ncpdp:NewRx", message_id, xml


def cancel_message(rx, old_pharmacy) -> tuple[str, str]:
    message_id = new_message_id()
    header = ncpdp.Header(to=ncpdp.Party("P", old_pharmacy.ncpdp_id),
                          from_=ncpdp.Party("D", rx.prescriber.npi or rx.prescriber.state_license_number or CLINIC_ID),
                          message_id=message_id, rx_reference_number=rx.rx_number)
    xml = ncpdp.build_cancel_rx(header=header, patient=_patient(rx.patient), pharmacy=_pharmacy(old_pharmacy),
                                prescriber=_prescriber(rx.prescriber),
                                medication=_medication(rx, refills=rx.refills_remaining),
                                note="Prescription moved to another pharmacy at the patient's request.")
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
