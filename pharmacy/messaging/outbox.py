"""The transactional outbox: enqueue inside the state change's transaction, deliver after commit.

    with transaction.atomic():
        ...change state...
        outbox_enqueue(kind="ncpdp:RxRenewalResponse", payload=xml, transport="http", destination=url,
                       dedupe_key=f"refill:{request.pk}:decision", related=request)

Delivery retries with exponential backoff (1, 2, 4 … minutes, capped at 6 h) and gives up
("dead") after OUTBOX_MAX_ATTEMPTS; a dead message stays listed for a person to resend.

No network under a lock (docs/design.md): a delivery claims the message (``sending``, with a
lease) in one short transaction, commits, sends with no transaction open and no row locked, then
records the result in a new transaction. A worker that dies mid-send leaves the claim to expire;
the retry sends the same message ID again, which the receiver already has (exactly once by message
ID: the file transport keeps one file per ID, HTTP sends Idempotency-Key and takes 409 as done).
"""
from __future__ import annotations

import copy
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pharmacy.actors import Actor, save_with_history, system_actor
from pharmacy.choices import OutboxStatus
from pharmacy.models import OutboxMessage

from .transports import TRANSPORTS, DeliveryError

MAX_ATTEMPTS_DEFAULT = 8


def new_message_id(prefix: str = "RXH") -> str:
    # NCPDP MessageID is 1–35 characters.
    return f"{prefix}{uuid.uuid4().hex[:28].upper()}"


def outbox_enqueue(*, kind: str, payload: str, transport: str, destination: str = "", actor: Actor | None = None,
                   reason: str = "", message_id: str | None = None, dedupe_key: str | None = None,
                   content_type: str = "application/xml", subject: str = "", credentials_env: str = "",
                   related=None, deliver_now: bool = True) -> OutboxMessage:
    """Write an outbound message in the caller's transaction. A repeated dedupe_key returns the
    existing message instead of a second one."""
    if transport not in TRANSPORTS:
        raise ValueError(f"Unknown transport {transport!r}")
    if dedupe_key:
        existing = OutboxMessage.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing
    message = OutboxMessage(
        message_id=message_id or new_message_id(), dedupe_key=dedupe_key, kind=kind, transport=transport,
        destination=destination, content_type=content_type, subject=subject, payload=payload,
        credentials_env=credentials_env,
        related_model=related._meta.label_lower if related is not None else "",
        related_id=str(related.pk) if related is not None else "",
    )
    save_with_history(message, actor=actor or system_actor("system:outbox"), reason=reason or f"Queued {kind}")
    if deliver_now:
        transaction.on_commit(lambda: schedule_delivery(message.pk))
    return message


def schedule_delivery(outbox_id: int) -> None:
    from django_q.tasks import async_task

    async_task("pharmacy.messaging.tasks.deliver_outbox_message", outbox_id, task_name=f"outbox-{outbox_id}",
               group="outbox")


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def claim_lease() -> timedelta:
    """How long a claimed (``sending``) message is left to its worker before another may retry it."""
    return timedelta(seconds=int(settings.RXHUB.get("OUTBOX_CLAIM_SECONDS", 600)))


def outbox_deliver(*, outbox_id: int) -> OutboxMessage:
    """Deliver one message: claim (commit), send (no transaction, no lock), record (new transaction).
    Safe to run twice at once: the claim lets one worker send and the other see it claimed or sent;
    a sent message is never sent again."""
    actor = system_actor("system:outbox")
    message = _claim(outbox_id, actor=actor)
    if message is None:
        return OutboxMessage.objects.get(pk=outbox_id)
    try:
        response, error = TRANSPORTS[message.transport](_rendered(message)), None
    except DeliveryError as exc:
        response, error = "", exc
    message = _record(outbox_id, attempt=message.attempts, response=response, error=error, actor=actor)
    if message.status == OutboxStatus.SENT:
        _after_delivery(message)
    return message


def _claim(outbox_id: int, *, actor: Actor) -> OutboxMessage | None:
    """Mark the message ``sending`` for this attempt and commit; None when it is not ours to send."""
    now = timezone.now()
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
        if message.status in (OutboxStatus.SENT, OutboxStatus.DEAD):
            return None
        if message.status == OutboxStatus.SENDING and message.next_attempt_at and message.next_attempt_at > now:
            return None  # another worker holds a live claim
        message.attempts += 1
        message.status, message.next_attempt_at = OutboxStatus.SENDING, now + claim_lease()
        save_with_history(message, actor=actor, reason=f"Delivery attempt {message.attempts} claimed",
                          update_fields=["status", "attempts", "next_attempt_at"])
    return message


def _record(outbox_id: int, *, attempt: int, response: str, error: DeliveryError | None, actor: Actor) -> OutboxMessage:
    max_attempts = settings.RXHUB.get("OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS_DEFAULT)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
        if message.status != OutboxStatus.SENDING or message.attempts != attempt:
            return message  # our claim expired and another attempt took over: it records its own result
        if error is not None:
            message.last_error = str(error)[:2000]
            if error.permanent or message.attempts >= max_attempts:
                message.status = OutboxStatus.DEAD
                reason = f"Delivery gave up after {message.attempts} attempt(s): {error}"
            else:
                message.status = OutboxStatus.FAILED
                message.next_attempt_at = timezone.now() + backoff(message.attempts)
                reason = f"Delivery attempt {message.attempts} failed; retry at {message.next_attempt_at:%H:%M}"
        else:
            message.status = OutboxStatus.SENT
            message.sent_at = timezone.now()
            message.response = (response or "")[:20000]
            message.last_error = ""
            reason = f"Delivered ({message.transport})"
        save_with_history(message, actor=actor, reason=reason[:500], update_fields=[
            "status", "attempts", "last_error", "next_attempt_at", "sent_at", "response"])
    return message


_PAYLOAD_RENDERERS: list[tuple[str, object]] = []


def register_payload_renderer(kind_prefix: str, renderer) -> None:
    """A message that carries a credential (a prescriber's signed link) is stored with a
    placeholder; ``renderer(message) -> str`` builds the text handed to the transport at delivery,
    so the credential is in neither the outbox row, its history, nor the outbox API."""
    if (kind_prefix, renderer) not in _PAYLOAD_RENDERERS:
        _PAYLOAD_RENDERERS.append((kind_prefix, renderer))


def _rendered(message: OutboxMessage) -> OutboxMessage:
    for prefix, renderer in _PAYLOAD_RENDERERS:
        if message.kind.startswith(prefix):
            view = copy.copy(message)  # the stored row keeps the placeholder
            view.payload = renderer(message)
            return view
    return message


_DELIVERY_HOOKS: list[tuple[str, object]] = []


def register_delivery_hook(kind_prefix: str, hook) -> None:
    """Workflow apps register (in AppConfig.ready) a function called after a message whose kind
    starts with ``kind_prefix`` was delivered, e.g. to move a refill to sent_to_pharmacy."""
    if (kind_prefix, hook) not in _DELIVERY_HOOKS:
        _DELIVERY_HOOKS.append((kind_prefix, hook))


def _after_delivery(message: OutboxMessage) -> None:
    for prefix, hook in _DELIVERY_HOOKS:
        if message.kind.startswith(prefix):
            hook(message)


def outbox_deliver_due(*, limit: int = 200) -> int:
    """Retry pending/failed messages whose time has come (the periodic task)."""
    # (a ``sending`` message whose claim expired: its worker died mid-send; same message ID again)
    due = list(OutboxMessage.objects.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SENDING],
        next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for pk in due:
        outbox_deliver(outbox_id=pk)
    return len(due)


def outbox_resend(*, outbox_id: int, actor: Actor) -> OutboxMessage:
    """A person puts a dead or failed message back in line (same message ID: still idempotent)."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
        if message.status in (OutboxStatus.SENT, OutboxStatus.SENDING):
            return message  # delivered, or a worker is sending it right now
        message.status, message.next_attempt_at = OutboxStatus.PENDING, timezone.now()
        save_with_history(message, actor=actor, reason="Resend requested", update_fields=["status", "next_attempt_at"])
        transaction.on_commit(lambda: schedule_delivery(message.pk))
    return message
