"""Map stored rows to the plain facts the pure rule modules (eligibility, protocol) take."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pharmacy.models import Allergy, Fill, LabResult, Patient, Prescription
from pharmacy.rules.facts import fill_records

from . import protocol
from .eligibility import PatientFacts, PrescriptionFacts
from .models import ProtocolRule as ProtocolRuleRow


def prescription_facts(rx: Prescription, fills: Iterable[Fill]) -> PrescriptionFacts:
    records = tuple(sorted(fill_records(fills), key=lambda r: r.fill_date))
    return PrescriptionFacts(
        status=rx.status, dea_schedule=rx.dea_schedule, refills_authorized=rx.refills_authorized,
        refills_remaining=rx.refills_remaining, written_date=rx.written_date, expiration_date=rx.expiration_date,
        days_supply=rx.days_supply, last_fill=records[-1] if records else None, fills=records,
        is_veterinary=rx.patient.is_animal,
    )


def patient_facts(patient: Patient, *, has_coverage: bool) -> PatientFacts:
    return PatientFacts(
        consent_to_messages=patient.consent_to_messages, contact_preference=patient.contact_preference,
        has_phone=bool(patient.phone), has_email=bool(patient.email), has_coverage=has_coverage,
        last_visit_date=patient.last_visit_date, species=patient.species,
    )


def conflict_labels(conflicts: Iterable[Allergy]) -> tuple[str, ...]:
    """How an allergy conflict is named in an eligibility finding."""
    return tuple(f"{a.substance}{' (' + a.reaction + ')' if a.reaction else ''}" for a in conflicts)


def protocol_rules() -> list[protocol.ProtocolRule]:
    rows = ProtocolRuleRow.objects.filter(is_active=True).order_by("priority", "name")
    return [rule_from_row(row) for row in rows]


def rule_from_row(row: ProtocolRuleRow) -> protocol.ProtocolRule:
    return protocol.rule_from_dict({
        "name": row.name, "mode": row.mode, "therapeutic_classes": row.therapeutic_classes,
        "drug_names": row.drug_names, "species": row.species, "require_maintenance": row.require_maintenance,
        "allow_controlled": row.allow_controlled, "allow_high_alert": row.allow_high_alert,
        "max_months_since_visit": row.max_months_since_visit, "required_labs": row.required_labs,
        "check_allergy_conflict": row.check_allergy_conflict, "check_too_soon": row.check_too_soon,
        "min_therapy_months": row.min_therapy_months, "bridge_days": row.bridge_days, "source": row.source,
        "notes": row.notes,
    })


def protocol_facts(*, rx: Prescription, fills: Iterable[Fill], labs: Iterable[LabResult], eligibility,
                   allergy_conflict: bool, last_protocol_approval: date | None) -> protocol.ProtocolFacts:
    records = sorted(fill_records(fills), key=lambda r: r.fill_date)
    drug = rx.drug
    return protocol.ProtocolFacts(
        therapeutic_class=drug.therapeutic_class, drug_name=drug.name, dea_schedule=rx.dea_schedule,
        is_maintenance=drug.is_maintenance, is_high_alert=drug.is_high_alert, species=rx.patient.species,
        last_visit_date=rx.patient.last_visit_date,
        labs=tuple(protocol.LabFact(lab.loinc_code, lab.collected_at.date(), lab.is_abnormal) for lab in labs),
        last_protocol_approval_date=last_protocol_approval, new_allergy_conflict=allergy_conflict,
        eligibility=eligibility, therapy_start_date=records[0].fill_date if records else rx.written_date,
    )


def reasons_as_json(result) -> list[dict]:
    return [{"code": r.code, "message": r.message, "blocking": r.blocking, "citation": r.citation,
             "overridable": r.overridable} for r in result.reasons]


def trace_as_json(decision) -> list[dict]:
    return [{"name": c.name, "passed": c.passed, "detail": c.detail, "skipped": c.skipped} for c in decision.trace]


def current_eligibility(rx: Prescription, *, kind: str, today: date, policy=None):
    """Eligibility as of ``today`` from the stored rows (fills, coverage, allergies): the gate
    every approval passes, and what the request page shows as blocking. Three queries."""
    from pharmacy.models import Coverage

    from .conf import eligibility_policy
    from .eligibility import check_eligibility

    fills = list(rx.fills.all())
    has_coverage = Coverage.objects.filter(patient_id=rx.patient_id, is_active=True).exists()
    from pharmacy.rules.allergy import allergy_conflicts

    conflicts = allergy_conflicts(rx.drug, Allergy.objects.filter(patient_id=rx.patient_id))
    return check_eligibility(prescription=prescription_facts(rx, fills),
                             patient=patient_facts(rx.patient, has_coverage=has_coverage),
                             has_open_request=False, today=today, policy=policy or eligibility_policy(), kind=kind,
                             allergy_conflicts=conflict_labels(conflicts))
