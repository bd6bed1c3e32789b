"""What every PA case service shares: the case lock, the checked move, the prescription's PA status."""
from __future__ import annotations

from pharmacy import workflow
from pharmacy.actors import Actor, actor_user, save_with_history, system_actor
from pharmacy.models import Prescription
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN

from ..choices import (
    CaseStatus,
    can_transition,
)
from ..models import (
    PACase,
    PrescriptionAuthorization,
)

S = CaseStatus


STATUS_ACTOR = system_actor("system:pa-status")


ROLLOUT_ACTOR = system_actor("system:pa-rollout")


PREPARE_ROLES = (PHARMACIST, TECHNICIAN, ADMIN)


DECIDE_ROLES = (PHARMACIST, ADMIN)


EDITABLE = (S.READY_FOR_REVIEW, S.PENDED, S.DENIED)


def _locked(case_id: int) -> PACase:
    return workflow.locked(PACase, case_id, label="PA case")


def _move(case: PACase, target: str, *, actor: Actor, reason: str, fields: tuple[str, ...] = ()) -> None:
    workflow.move(case, target, transitions=can_transition, label="PA case", actor=actor, reason=reason,
                  fields=fields, max_reason=500)
    _sync_prescription_status(case, actor=actor)


def _sync_prescription_status(case: PACase, *, actor: Actor) -> None:
    """The prescription's PA status follows its latest case."""
    row = (
        PrescriptionAuthorization.objects.select_for_update()
        .filter(prescription_id=case.prescription_id)
        .first()
    )
    values = {
        "case": case,
        "status": case.status,
        "authorization_number": case.authorization_number,
        "effective_date": case.effective_date,
        "expiration_date": case.expiration_date,
    }
    if row is None:
        row = PrescriptionAuthorization(prescription_id=case.prescription_id, **values)
        save_with_history(row, actor=actor, reason=f"PA case {case.pk}: {case.get_status_display()}")
        return
    if row.case_id != case.pk and row.case.created_at > case.created_at:
        return  # a newer case (e.g. a renewal) speaks for the prescription
    current = {
        "case": row.case_id,
        "status": row.status,
        "authorization_number": row.authorization_number,
        "effective_date": row.effective_date,
        "expiration_date": row.expiration_date,
    }
    changed = [k for k, v in values.items() if current[k] != (v.pk if k == "case" else v)]
    if changed:
        for k, v in values.items():
            setattr(row, k, v)
        save_with_history(
            row, actor=actor, reason=f"PA case {case.pk}: {case.get_status_display()}", update_fields=changed
        )


def _user(actor: Actor):
    return actor_user(actor)


def _facts(case: PACase, rx: Prescription, expedited: bool) -> dict:
    p, d = rx.patient, rx.prescriber
    return {
        "drug": str(rx.drug),
        "patient_name": p.full_name,
        "birth_date": p.birth_date.isoformat(),
        "member_id": case.coverage.member_id if case.coverage else "",
        "payer_name": case.payer.name if case.payer else (case.coverage.payer_name if case.coverage else ""),
        "prescriber_name": str(d),
        "quantity": f"{rx.quantity.normalize():f}",
        "days_supply": rx.days_supply,
        "pharmacy_name": rx.pharmacy.name if rx.pharmacy else "",
        "expedited": expedited,
        "payer_case_id": case.payer_case_id,
    }


def _notice(case: PACase, text: str, *, actor: Actor) -> None:
    case.attention = text[:200]
    save_with_history(
        case, actor=actor, reason=f"Pharmacist queue notified: {text}"[:500], update_fields=["attention"]
    )
