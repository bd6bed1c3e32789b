"""django-q2 task functions (thin: re-fetch, call a service; safe to run twice)."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from pharmacy.actors import system_actor


def pull_ehr_record(patient_id: int, user_id: int | None = None) -> int:
    from .services import pull_ehr_record as pull

    actor = get_user_model().objects.get(pk=user_id) if user_id else system_actor("system:reconciliation")
    return pull(patient_id=patient_id, actor=actor).pk


def retry_failed_inbound(limit: int = 100) -> int:
    """Retry failed inbound messages (e.g. after a fix was deployed); each keeps its error otherwise."""
    from .choices import InboundStatus
    from .models import InboundMessage
    from .services import inbound_retry

    ids = list(InboundMessage.objects.filter(status=InboundStatus.FAILED).exclude(message_type="")
               .order_by("received_at").values_list("pk", flat=True)[:limit])
    for pk in ids:
        inbound_retry(message_id=pk, actor=system_actor("system:inbound"))
    return len(ids)
