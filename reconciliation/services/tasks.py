"""Reconciliation tasks: opening one from a record, accepting and rejecting discrepancies (and
applying exactly the accepted change)."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy import workflow
from pharmacy.actors import Actor, actor_user, bulk_create_recorded, save_with_history
from pharmacy.errors import DomainError
from pharmacy.interop.clinical import ClinicalRecord
from pharmacy.models import Allergy, Drug, Patient, Prescription
from pharmacy.roles import ADMIN, PHARMACIST, require_role
from pharmacy.rules.allergy import allergy_drug_class
from pharmacy.rules.facts import allergy_entry
from pharmacy.services import prescription_create

from .. import choices, compare, facts
from ..choices import (
    DiscrepancyAction,
    DiscrepancyStatus,
    TaskKind,
    TaskStatus,
)
from ..models import Discrepancy, InboundMessage, ReconciliationTask
from ._common import RECONCILIATION, _sys
from .outbound import _send_summary

DISCHARGE_TYPES = {"ADT^A03", "DischargeSummary"}


ADMISSION_TYPES = {"ADT^A01", "ADT^A04", "TransferSummary"}


# Order messages carry one order, not the patient's whole list: nothing is "missing" from them.
PARTIAL_LIST_TYPES = {"RDE^O11", "RDE^O25", "RDS^O13", "ORM^O01", "OMP^O09", "ORU^R01", "MedicationRequest",
                      "MedicationDispense", "MedicationStatement", "Medication", "AllergyIntolerance"}


def _task_kind(record: ClinicalRecord, message: InboundMessage) -> str:
    if record.message_type in DISCHARGE_TYPES or record.is_discharge:
        return TaskKind.DISCHARGE
    if message.channel == choices.Channel.PULL:
        return TaskKind.PULL
    if record.message_type in ADMISSION_TYPES:
        return TaskKind.ADMISSION
    return TaskKind.UPDATE


def _active_prescriptions(patient: Patient) -> list[Prescription]:
    return list(Prescription.objects.filter(patient=patient, status="active").select_related("drug", "prescriber")
                .order_by("id"))


def _open_task(patient: Patient, record: ClinicalRecord, message: InboundMessage) -> ReconciliationTask | None:
    """Compare the record's lists with the pharmacy's and open a task when anything differs.
    Nothing in the pharmacy's records changes here: only acceptance applies a change."""
    if not (record.medications or record.allergies):
        return None
    medications = record.medications
    if record.format == "ccda" and record.is_discharge:
        # A discharge summary's list is its Discharge Medications section (LOINC 10183-2), not the
        # hospital-course or admission lists (C-CDA R2.1 template 2.16.840.1.113883.10.20.22.2.11.1).
        discharge = [m for m in medications if m.source in ("10183-2", "75311-1")]
        medications = discharge or medications
    prescriptions = _active_prescriptions(patient)
    allergies = list(Allergy.objects.filter(patient=patient).exclude(status="entered_in_error"))
    ehr_meds = [facts.ehr_medication(m) for m in medications]
    ehr_allergies = [facts.ehr_allergy(a) for a in record.allergies]
    # a list that says "no information" is unknown: nothing is missing from it (C-CDA nullFlavor NI)
    complete = bool(medications) and not record.medications_unknown and record.message_type not in PARTIAL_LIST_TYPES
    findings = compare.compare(
        ehr_medications=ehr_meds, prescriptions=[facts.pharmacy_prescription(rx) for rx in prescriptions],
        ehr_allergies=ehr_allergies, pharmacy_allergies=[allergy_entry(a) for a in allergies],
        ehr_list_complete=complete)
    if not findings:
        return None
    rank = min(choices.PRIORITY_RANK[f.priority] for f in findings)
    task = save_with_history(ReconciliationTask(
        patient=patient, inbound_message=message, kind=_task_kind(record, message),
        priority=[p for p, r in choices.PRIORITY_RANK.items() if r == rank][0], priority_rank=rank,
        source_format=record.format if record.format in choices.PayloadFormat.values else "unknown",
        ehr_system=(record.sender or message.sender)[:200],
        ehr_medications=facts.as_dicts(ehr_meds), ehr_allergies=facts.as_dicts(ehr_allergies),
        no_known_allergies=record.no_known_allergies,
        pharmacy_medications=[{"id": rx.pk, "drug": str(rx.drug), "sig": rx.sig, "status": rx.status,
                               "prescriber": str(rx.prescriber)} for rx in prescriptions],
        pharmacy_allergies=[{"id": a.pk, "substance": a.substance, "reaction": a.reaction, "status": a.status}
                            for a in allergies]),
        actor=_sys(RECONCILIATION), reason=f"Opened from inbound message {message.pk} ({record.message_type})")
    rows = [Discrepancy(task=task, kind=f.kind, priority=f.priority, action=f.action, summary=f.summary[:300],
                        suggested_action=f.suggested_action, ehr_data=facts.jsonable(f.ehr),
                        pharmacy_data=facts.jsonable(f.pharmacy) | {"reasons": f.reasons},
                        prescription_id=f.prescription_id, position=index)
            for index, f in enumerate(sorted(findings, key=lambda f: choices.PRIORITY_RANK[f.priority]))]

    bulk_create_recorded(
        Discrepancy, rows, actor=_sys(RECONCILIATION), reason=f"Found comparing with message {message.pk}"
    )
    return task


def _locked_pair(discrepancy_id: int) -> tuple[ReconciliationTask, Discrepancy]:
    task_id = Discrepancy.objects.filter(pk=discrepancy_id).values_list("task_id", flat=True).first()
    if task_id is None:
        raise DomainError(f"Discrepancy {discrepancy_id} does not exist.", code="not_found")
    task = ReconciliationTask.objects.select_for_update().get(pk=task_id)  # task first: one lock order
    discrepancy = Discrepancy.objects.select_for_update().get(pk=discrepancy_id)
    return task, discrepancy


def _decide(discrepancy: Discrepancy, target: str, *, actor: Actor, note: str) -> None:
    workflow.check_transition(choices.DISCREPANCY_TRANSITIONS, discrepancy.status, target, label="discrepancy")
    discrepancy.status = target
    discrepancy.decided_by, discrepancy.decided_at, discrepancy.note = actor_user(actor), timezone.now(), note.strip()


def discrepancy_accept(*, discrepancy_id: int, actor: Actor, note: str = "", drug_id: int | None = None) -> Discrepancy:
    """Accept and apply exactly this discrepancy's change, in one transaction with history.
    ``drug_id``: the catalog drug a pharmacist chose for an EHR name the catalog did not recognise."""
    require_role(actor, PHARMACIST, ADMIN, action="accept a reconciliation item")
    with transaction.atomic():
        task, discrepancy = _locked_pair(discrepancy_id)
        if drug_id is not None:
            if not Drug.objects.filter(pk=drug_id, is_active=True).exists():
                raise DomainError("Choose an active drug from the catalog search.", code="drug_unknown")
            discrepancy.ehr_data = {**(discrepancy.ehr_data or {}), "chosen_drug_id": drug_id}
        _decide(discrepancy, DiscrepancyStatus.ACCEPTED, actor=actor, note=note)
        discrepancy.applied = _apply(discrepancy, task, actor=actor)
        save_with_history(
            discrepancy,
            actor=actor,
            reason=f"Accepted{': ' + note.strip() if note.strip() else ''}"[:500],
            update_fields=[
                "status",
                "decided_by",
                "decided_at",
                "note",
                "applied",
                "created_prescription",
                "created_allergy",
                *(["ehr_data"] if drug_id is not None else []),
            ],
        )
        record_event(kind="reconciliation.accepted", actor=actor, subject=discrepancy, patient_id=task.patient_id,
                     summary=f"{discrepancy.get_kind_display()} accepted: {discrepancy.summary}"[:300],
                     data={"task": task.pk, "action": discrepancy.action, "applied": discrepancy.applied})
        _after_decision(task, actor=actor)
    return discrepancy


def discrepancy_reject(*, discrepancy_id: int, actor: Actor, note: str = "") -> Discrepancy:
    require_role(actor, PHARMACIST, ADMIN, action="reject a reconciliation item")
    with transaction.atomic():
        task, discrepancy = _locked_pair(discrepancy_id)
        _decide(discrepancy, DiscrepancyStatus.REJECTED, actor=actor, note=note)
        save_with_history(
            discrepancy,
            actor=actor,
            reason=f"Rejected{': ' + note.strip() if note.strip() else ''}"[:500],
            update_fields=["status", "decided_by", "decided_at", "note"],
        )
        record_event(kind="reconciliation.rejected", actor=actor, subject=discrepancy, patient_id=task.patient_id,
                     summary=f"{discrepancy.get_kind_display()} rejected: {discrepancy.summary}"[:300],
                     data={"task": task.pk})
        _after_decision(task, actor=actor)
    return discrepancy


def _after_decision(task: ReconciliationTask, *, actor: Actor) -> None:
    """The task's own moves, checked against choices.TASK_TRANSITIONS like every other."""
    if task.status == TaskStatus.OPEN:
        workflow.move(task, TaskStatus.IN_REVIEW, transitions=choices.TASK_TRANSITIONS, label="reconciliation task",
                      actor=actor, reason="Review started")
    if not task.discrepancies.filter(status=DiscrepancyStatus.PROPOSED).exists():
        task.completed_at, task.completed_by = timezone.now(), actor_user(actor)
        workflow.move(task, TaskStatus.COMPLETED, transitions=choices.TASK_TRANSITIONS, label="reconciliation task",
                      actor=actor, reason="Every discrepancy decided", fields=("completed_at", "completed_by"))
        _send_summary(task, actor=actor)


def _rx_locked(discrepancy: Discrepancy) -> Prescription:
    if discrepancy.prescription_id is None:
        raise DomainError("This discrepancy names no prescription to change.", code="no_prescription")
    return Prescription.objects.select_for_update().select_related("drug").get(pk=discrepancy.prescription_id)


def _set_rx_status(rx: Prescription, status: str, *, actor: Actor, reason: str) -> dict:
    if rx.status not in ("active", "on_hold", "pending") or rx.status == status:
        raise DomainError(f"Rx {rx.pk} is {rx.get_status_display().lower()}; it cannot become {status}.",
                          code="prescription_not_changeable")
    before = rx.status
    rx.status = status
    save_with_history(rx, actor=actor, reason=reason[:500], update_fields=["status"])
    return {"model": "prescription", "id": rx.pk, "field": "status", "from": before, "to": status}


def _drug_for(ehr: dict, fallback: Drug | None = None) -> Drug:
    """The catalog drug an EHR line names, through the core's one normaliser (salt forms, dose
    forms and strengths as pharmacists write them: "DOXYCYCLINE HYCLATE 100MG" is the catalog's
    "doxycycline hyclate 100 mg capsule")."""
    from pharmacy.selectors import drugs_matching

    written = ehr.get("name") or ehr.get("text") or ""
    if ehr.get("chosen_drug_id"):  # chosen by the pharmacist from the catalog search
        return Drug.objects.get(pk=ehr["chosen_drug_id"])
    drugs = drugs_matching(written, ingredient=ehr.get("ingredient") or "")
    if not drugs and fallback is not None and drugs_matching(fallback.name, ingredient=ehr.get("ingredient") or ""):
        drugs = [fallback]
    if not drugs:
        raise DomainError(f"“{written}” matches no drug in the catalog. Search the catalog below for the drug "
                          f"the EHR means and accept it as that drug.", code="drug_unknown")
    wanted = compare.normalise_strength(ehr.get("strength", "")) or compare.name_strength(written)
    return next((d for d in drugs if wanted and compare.normalise_strength(d.strength) == wanted), drugs[0])


def _create_pending(task: ReconciliationTask, discrepancy: Discrepancy, *, actor: Actor,
                    like: Prescription | None = None) -> Prescription:
    ehr = discrepancy.ehr_data
    drug = _drug_for(ehr, like.drug if like else None)
    prescriber = like.prescriber if like else task.patient.primary_prescriber
    if prescriber is None:
        prescriber = (Prescription.objects.filter(patient=task.patient).select_related("prescriber")
                      .order_by("-written_date").first() or Prescription(prescriber=None)).prescriber
    if prescriber is None:
        raise DomainError("The patient has no primary prescriber to confirm a new prescription with.",
                          code="no_prescriber")
    sig = " ".join(p for p in [ehr.get("text") or ehr.get("name"), "(from EHR; confirm with prescriber)"] if p)
    rx = Prescription(patient=task.patient, prescriber=prescriber, drug=drug, sig=sig[:2000],
                      quantity=like.quantity if like else 30, days_supply=like.days_supply if like else 30,
                      refills_authorized=0, refills_remaining=0, written_date=timezone.localdate(),
                      pharmacy=like.pharmacy if like else task.patient.preferred_pharmacy, status="pending")
    return prescription_create(prescription=rx, actor=actor,
                               reason=f"Pending prescription from reconciliation task {task.pk} (discrepancy "
                                      f"{discrepancy.pk}); to confirm with the prescriber")


_SEVERITY = {"mild": "mild", "mi": "mild", "moderate": "moderate", "mo": "moderate", "severe": "severe", "sv": "severe"}


def _apply(discrepancy: Discrepancy, task: ReconciliationTask, *, actor: Actor) -> dict:
    """The change this discrepancy's action names — and nothing else."""
    action = discrepancy.action
    why = f"Reconciliation task {task.pk}, discrepancy {discrepancy.pk}: {discrepancy.summary}"
    if action == DiscrepancyAction.HOLD:
        return {"changes": [_set_rx_status(_rx_locked(discrepancy), "on_hold", actor=actor, reason=why)]}
    if action == DiscrepancyAction.DISCONTINUE:
        return {"changes": [_set_rx_status(_rx_locked(discrepancy), "discontinued", actor=actor, reason=why)]}
    if action == DiscrepancyAction.CREATE_PENDING:
        rx = _create_pending(task, discrepancy, actor=actor)
        discrepancy.created_prescription = rx
        return {"changes": [{"model": "prescription", "id": rx.pk, "created": True, "status": "pending"}]}
    if action == DiscrepancyAction.REPLACE_PENDING:
        old = _rx_locked(discrepancy)
        held = _set_rx_status(old, "on_hold", actor=actor, reason=why)
        rx = _create_pending(task, discrepancy, actor=actor, like=old)
        discrepancy.created_prescription = rx
        return {"changes": [held, {"model": "prescription", "id": rx.pk, "created": True, "status": "pending"}]}
    if action == DiscrepancyAction.ADD_ALLERGY:
        ehr = discrepancy.ehr_data
        drug_class = allergy_drug_class(ehr.get("substance", ""))
        rxcui = ehr.get("code", "") if ehr.get("code_system") == "rxnorm" and str(ehr.get("code", "")).isdigit() else ""
        allergy = Allergy(patient=task.patient, substance=(ehr.get("substance") or "")[:200], rxcui=rxcui[:8],
                          drug_class=drug_class,
                          reaction=(ehr.get("reaction") or "")[:200],
                          severity=_SEVERITY.get((ehr.get("severity") or "").lower(), "unknown"), source="ehr")
        allergy.full_clean(exclude=["patient"])
        save_with_history(allergy, actor=actor, reason=why[:500])
        discrepancy.created_allergy = allergy
        return {"changes": [{"model": "allergy", "id": allergy.pk, "created": True}]}
    return {"changes": []}
