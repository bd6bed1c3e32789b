"""State changes of the core domain. Each takes the acting user or system actor and records why."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction

from .actors import Actor, save_with_history, system_actor
from .models import Encounter, Facility, Patient


def default_facility() -> Facility:
    code = settings.RXHUB["DEFAULT_FACILITY_CODE"]
    facility = Facility.objects.filter(code=code).first()
    if facility is None:
        facility = save_with_history(
            Facility(code=code, name="Main practice"), actor=system_actor("system:maintenance"),
            reason="Default facility created on first use",
        )
    return facility


@transaction.atomic
def encounter_record(*, actor: Actor, reason: str, patient: Patient, **fields) -> Encounter:
    """Record a visit; a newer visit moves the patient's last visit date forward."""
    encounter = save_with_history(Encounter(patient=patient, **fields), actor=actor, reason=reason)
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    if locked.last_visit_date is None or encounter.date > locked.last_visit_date:
        locked.last_visit_date = encounter.date
        save_with_history(locked, actor=actor, reason=f"Last visit updated from encounter {encounter.pk}",
                          update_fields=["last_visit_date"])
    return encounter
