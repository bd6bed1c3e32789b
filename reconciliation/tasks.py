"""django-q2 task functions (thin: re-fetch, call a service; safe to run twice)."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from pharmacy.actors import system_actor


def pull_ehr_record(patient_id: int, user_id: int | None = None) -> int:
    from .services import pull_ehr_record as pull

    actor = get_user_model().objects.get(pk=user_id) if user_id else system_actor("system:reconciliation")
    return pull(patient_id=patient_id, actor=actor).pk


def retry_failed_inbound(limit: int = 100) -> int:
    """Process inbound messages left received for over a minute and failed ones whose backoff is
    over (the core's rxhub:inbound-sweep schedule does this for every pipeline each minute)."""
    from .services import PIPELINE

    return PIPELINE.sweep(limit=limit)
