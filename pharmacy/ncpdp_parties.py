"""Core records as NCPDP SCRIPT parties: one mapping used by refills (dispatch, inbound) and prior
authorization (ePA adapter), so every transaction carries the same patient, prescriber (with the
practice's address and phone, which SCRIPT 2017071 requires), pharmacy and medication."""
from __future__ import annotations

from decimal import Decimal

from pharmacy.interop import ncpdp


def patient_info(p) -> ncpdp.PatientInfo:
    common = dict(last_name=p.last_name, first_name=p.first_name, gender=p.sex if p.sex in ("M", "F", "U") else "U",
                  birth_date=p.birth_date, address_line1=p.address_line1, city=p.city, state=p.state,
                  postal_code=p.postal_code, phone=p.phone)
    if p.is_animal:
        return ncpdp.PatientInfo(**common, is_animal=True, species=p.species, owner_last_name=p.owner_last_name,
                                 owner_first_name=p.owner_first_name)
    return ncpdp.PatientInfo(**common)


def prescriber_info(d) -> ncpdp.PrescriberInfo:
    practice = d.practice
    return ncpdp.PrescriberInfo(
        npi=d.npi or "", dea=d.dea_number, state_license=d.state_license_number, last_name=d.last_name,
        first_name=d.first_name, phone=d.phone or (practice.phone if practice else ""),
        is_veterinarian=d.is_veterinarian,
        address_line1=practice.address_line1 if practice else "", city=practice.city if practice else "",
        state=practice.state if practice else "", postal_code=practice.postal_code if practice else "")


def pharmacy_info(ph) -> ncpdp.PharmacyInfo:
    return ncpdp.PharmacyInfo(ncpdp_id=ph.ncpdp_id, npi=ph.npi, name=ph.name, phone=ph.phone,
                              address_line1=ph.address_line1, city=ph.city, state=ph.state,
                              postal_code=ph.postal_code)


def medication_info(rx, *, refills: int | None = None, quantity: Decimal | None = None, days_supply: int | None = None,
                    last_fill_date=None) -> ncpdp.MedicationInfo:
    drug = rx.drug
    return ncpdp.MedicationInfo(
        description=str(drug), ndc=drug.ndc or "", quantity=quantity or rx.quantity,
        quantity_unit=ncpdp.values.quantity_unit(drug.dose_form), days_supply=days_supply or rx.days_supply,
        written_date=rx.written_date, last_fill_date=last_fill_date,
        refills=rx.refills_remaining if refills is None else refills, sig_text=rx.sig)


def refused_message(exc: ncpdp.ValueRefused, transaction: str) -> str:
    """What staff see when a record cannot be sent (the field names the message element)."""
    return f"Cannot send the NCPDP {transaction}: {exc.field}: {exc.problem}. Correct the record and try again."
