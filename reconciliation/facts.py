"""Map models and reader output to the plain data ``compare.py`` takes (and back to JSON)."""
from __future__ import annotations

from dataclasses import asdict

from pharmacy.interop.clinical import AllergyData, MedicationData
from pharmacy.interop.sig import parse_sig
from pharmacy.models import Prescription

from .compare import AllergyEntry, EhrMedication, PharmacyPrescription


def jsonable(value):
    from pharmacy.interop.clinical import _jsonable

    return _jsonable(value)


def ehr_medication(med: MedicationData) -> EhrMedication:
    frequency = med.frequency
    as_needed = med.as_needed or frequency == "prn"
    return EhrMedication(name=med.name, text=med.text or med.sig, code=med.code, code_system=med.code_system,
                         strength=med.strength, dose=med.dose, route=med.route, frequency=frequency,
                         as_needed=as_needed, status=(med.status or "active").lower(), negated=med.negated,
                         prescriber=med.prescriber)


def ehr_allergy(allergy: AllergyData) -> AllergyEntry:
    return AllergyEntry(substance=allergy.substance or allergy.code or "(unnamed)", code=allergy.code,
                        code_system=allergy.code_system, reaction=", ".join(allergy.reaction),
                        severity=allergy.severity, status=(allergy.status or "active").lower(),
                        negated=allergy.negated, source="ehr")


def pharmacy_prescription(rx: Prescription) -> PharmacyPrescription:
    """The prescription as compare sees it; frequency and PRN come from the sig text."""
    parsed = parse_sig(f"{rx.drug.name} {rx.sig}")
    return PharmacyPrescription(
        id=rx.pk, name=rx.drug.name, strength=rx.drug.strength, frequency=parsed.frequency,
        as_needed=parsed.as_needed, rxcui=rx.drug.rxcui, ndc=rx.drug.ndc or "",
        drug_class=rx.drug.therapeutic_class, high_alert=rx.drug.is_high_alert, maintenance=rx.drug.is_maintenance,
        sig=rx.sig, prescriber=str(rx.prescriber) if rx.prescriber_id else "")


def as_dicts(items) -> list[dict]:
    return [jsonable(asdict(item)) for item in items]
