"""Record security-relevant events into the hash chain.

    record_event(kind="refill.approved", actor=user_or_system_actor, subject=refill_request,
                 patient_id=..., summary="Approved with changes", data={...}, request=request)

Call it inside the transaction of the change it records: the event commits or rolls back with it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
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


def audit_key() -> bytes:
    """The chain's HMAC key (RXHUB_AUDIT_KEY through settings; production refuses to start without it)."""
    return str(settings.RXHUB["AUDIT_KEY"]).encode("utf-8")


def compute_hash(event: AuditEvent, *, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the canonical form (RFC 2104): whoever can write the tables but lacks the key
    cannot produce a hash that verifies (45 CFR 164.312(c)(2))."""
    return hmac.new(audit_key() if key is None else key, canonical(event), hashlib.sha256).hexdigest()


# Appends are serialised on PostgreSQL with a transaction-level advisory lock (the head rows are
# append-only, so there is no row to lock); SQLite's IMMEDIATE transactions serialise writers anyway.
CHAIN_LOCK_KEY = 0x5258_4855_4155_4454 & 0x7FFF_FFFF_FFFF_FFFF  # "RXHUAUDT"


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def chain_head() -> AuditChainHead | None:
    return AuditChainHead.objects.order_by("-sequence").first()


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
    _lock_chain()
    head = chain_head()
    last_sequence, last_hash = (head.sequence, head.hash) if head is not None else (0, GENESIS)
    user = actor_user(actor) if actor is not None else None
    event = AuditEvent(
        sequence=last_sequence + 1,
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
        prev_hash=last_hash,
    )
    event.hash = compute_hash(event)
    event.save(force_insert=True)
    AuditChainHead.objects.create(sequence=event.sequence, hash=event.hash)
    every = int(settings.RXHUB.get("AUDIT_ANCHOR_EVERY") or 0)
    if every and event.sequence % every == 0:
        from .anchor import write_anchor

        sequence, digest = event.sequence, event.hash
        transaction.on_commit(lambda: write_anchor(sequence=sequence, hash=digest))
    return event
