"""Record security-relevant events into the hash chain.

    record_event(kind="refill.approved", actor=user_or_system_actor, subject=refill_request,
                 patient_id=..., summary="Approved with changes", data={...}, request=request)

Call it inside the transaction of the change it records: the event commits or rolls back with it.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from pharmacy.actors import Actor, actor_label, actor_user

from .models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """Canonical serialisation hashed into the chain: sorted keys, no whitespace, UTC ISO times."""
    occurred = event.occurred_at
    if isinstance(occurred, datetime):
        occurred = occurred.astimezone(UTC).isoformat(timespec="microseconds")
    body = {
        "sequence": int(event.sequence), "occurred_at": occurred, "kind": event.kind,
        "actor_id": event.actor_id, "actor_label": event.actor_label, "subject_type": event.subject_type,
        "subject_id": str(event.subject_id), "patient_id": event.patient_id, "ip_address": event.ip_address,
        "summary": event.summary, "data": event.data, "prev_hash": event.prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8")


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def client_ip(request) -> str | None:
    if request is None:
        return None
    request = getattr(request, "_request", request)
    return request.META.get("REMOTE_ADDR") or None


@transaction.atomic
def record_event(*, kind: str, actor: Actor | None, subject=None, patient_id: int | None = None,
                 summary: str = "",
                 data: dict | None = None, request=None, actor_name: str | None = None) -> AuditEvent:
    """Append one event. ``actor`` may be None only for events without a user (e.g. a failed
    login), in which case ``actor_name`` says who tried."""
    head, _ = AuditChainHead.objects.get_or_create(pk=1)
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    user = actor_user(actor) if actor is not None else None
    event = AuditEvent(
        sequence=head.last_sequence + 1,
        occurred_at=timezone.now(),
        kind=kind,
        actor=user,
        actor_label=(actor_label(actor) if actor is not None else (actor_name or "anonymous"))[:150],
        subject_type=subject._meta.label_lower if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        patient_id=patient_id,
        ip_address=client_ip(request),
        summary=summary[:300],
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(event)
    event.save(force_insert=True)
    head.last_sequence, head.last_hash = event.sequence, event.hash
    head.save(update_fields=["last_sequence", "last_hash"])
    return event
