"""django-q2 task functions (thin: re-fetch, call a service; safe to run twice)."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from pharmacy.actors import system_actor


def pull_ehr_record(patient_id: int, user_id: int | None = None) -> dict:
    """The EHR pull, run by the task cluster (network I/O, no transaction open); the result is
    stored with the task and shown on the patient page (``services.last_pull``)."""
    from pharmacy.errors import DomainError

    from .services import pull_ehr_record as pull

    actor = get_user_model().objects.get(pk=user_id) if user_id else system_actor("system:reconciliation")
    try:
        message = pull(patient_id=patient_id, actor=actor)
    except DomainError as exc:
        return {"ok": False, "code": exc.code, "error": str(exc)[:500]}
    return {"ok": message.status == "processed", "message_id": message.pk, "status": message.status,
            "error": message.error[:500]}


def retry_failed_inbound(limit: int = 100) -> int:
    """Process inbound messages left received for over a minute and failed ones whose backoff is
    over (the core's rxhub:inbound-sweep schedule does this for every pipeline each minute)."""
    from .services import PIPELINE

    return PIPELINE.sweep(limit=limit)
