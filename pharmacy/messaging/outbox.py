"""The transactional outbox: enqueue inside the state change's transaction, deliver after commit.

    with transaction.atomic():
        ...change state...
        outbox_enqueue(kind="ncpdp:RxRenewalResponse", payload=xml, transport="http", destination=url,
                       dedupe_key=f"refill:{request.pk}:decision", related=request)

Delivery retries with exponential backoff (1, 2, 4 … minutes, capped at 6 h) and gives up
("dead") after OUTBOX_MAX_ATTEMPTS; a dead message stays listed for a person to resend.
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


def outbox_deliver(*, outbox_id: int) -> OutboxMessage:
    """Deliver one message. Safe to run twice at once: the row lock lets one worker send and the
    other see it sent; a sent message is never sent again."""
    actor = system_actor("system:outbox")
    max_attempts = settings.RXHUB.get("OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS_DEFAULT)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
        if message.status in (OutboxStatus.SENT, OutboxStatus.DEAD):
            return message
        message.attempts += 1
        try:
            response = TRANSPORTS[message.transport](_rendered(message))
        except DeliveryError as exc:
            message.last_error = str(exc)[:2000]
            if exc.permanent or message.attempts >= max_attempts:
                message.status = OutboxStatus.DEAD
                reason = f"Delivery gave up after {message.attempts} attempt(s): {exc}"
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
    if message.status == OutboxStatus.SENT:
        _after_delivery(message)
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
    due = list(OutboxMessage.objects.filter(
        status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED], next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for pk in due:
        outbox_deliver(outbox_id=pk)
    return len(due)


def outbox_resend(*, outbox_id: int, actor: Actor) -> OutboxMessage:
    """A person puts a dead or failed message back in line (same message ID: still idempotent)."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
        if message.status == OutboxStatus.SENT:
            return message
        message.status, message.next_attempt_at = OutboxStatus.PENDING, timezone.now()
        save_with_history(message, actor=actor, reason="Resend requested", update_fields=["status", "next_attempt_at"])
        transaction.on_commit(lambda: schedule_delivery(message.pk))
    return message
