"""Signed prescriber approval links (DESIGN.md: signed links).

A link is a random token that carries no PHI, is bound to one request and one prescriber, works
once, and expires after ``RXHUB["PRESCRIBER_LINK_HOURS"]`` (72 h). Only the token's SHA-256 is
stored. The token is ``HMAC-SHA256(SECRET_KEY, salt)`` over a random salt, so the e-mail, the text
message and the 24 h reminder can be rendered at delivery time: the outbox row (and its history,
and the outbox API) hold a placeholder, never the link itself.

Lifecycle: ``link_create_and_send`` (called by ``refill_request_forward``) → the prescriber opens
``prescriber-link`` → ``prescriber_link_answer`` validates the link under a row lock, marks it used
and records the decision in one transaction → ``prescriber_links_process`` (django-q2 schedule and
``manage.py process_prescriber_links``) reminds unanswered links and escalates expired ones to the
pharmacist queue (awaiting_prescriber → expired → needs_review).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, save_with_history, system_actor
from pharmacy.errors import DomainError
from pharmacy.messaging.outbox import outbox_enqueue
from pharmacy.models import OutboxMessage

from . import services
from .choices import LinkStatus, RefillStatus
from .models import PrescriberLink, RefillRequest
from .services import refill_request_move as _move

S = RefillStatus
LINK_ACTOR = system_actor("system:prescriber-link")
PLACEHOLDER = "[[prescriber-link]]"
KIND_PREFIX = "prescriber-link"  # outbox kinds: email:prescriber-link, sms:prescriber-link-reminder …
# "new_prescription": the prescriber will send a new prescription from their EPCS-certified system
# (the only answer besides deny for Schedule II–V, 21 CFR 1311; refills/new_prescriptions.py).
DECISIONS = ("approve", "approve_with_changes", "deny", "new_prescription")


# --- errors (each names the page the prescriber sees) --------------------------------------------

class LinkError(DomainError):
    status_code = 410
    code = "link_invalid"
    title = "This link cannot be used"


class LinkNotFound(LinkError):
    status_code = 404
    code = "link_not_found"
    title = "This link is not valid"


class LinkExpired(LinkError):
    code = "link_expired"
    title = "This link has expired"


class LinkUsed(LinkError):
    code = "link_used"
    title = "This link has already been used"


class LinkClosed(LinkError):
    code = "link_closed"
    title = "This request no longer needs your answer"


class LinkWrongPrescriber(LinkError):
    status_code = 403
    code = "link_wrong_prescriber"
    title = "This link is not for the request's prescriber"


# --- tokens ---------------------------------------------------------------------------------------

def _token_for(salt: str) -> str:
    key = hashlib.sha256(f"rxhub.prescriber-link:{settings.SECRET_KEY}".encode()).digest()
    mac = hmac.new(key, salt.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_token(link: PrescriberLink) -> str:
    """The link's token (for rendering a message); None of it is stored."""
    return _token_for(link.token_salt)


def link_url(link: PrescriberLink) -> str:
    base = settings.RXHUB.get("PUBLIC_BASE_URL", "").rstrip("/")
    return base + reverse("refills:prescriber-link", kwargs={"token": link_token(link)})


def link_hours() -> int:
    return int(settings.RXHUB.get("PRESCRIBER_LINK_HOURS", 72))


def reminder_hours() -> int:
    return int(settings.RXHUB.get("PRESCRIBER_REMINDER_HOURS", 24))


# --- messages (no PHI: no patient, no drug; the prescriber's own name only) ----------------------

def _channels(prescriber) -> list[tuple[str, str]]:
    wanted = {"email": ["email"], "sms": ["sms"], "both": ["email", "sms"]}.get(prescriber.link_preference, ["email"])
    address = {"email": prescriber.email, "sms": prescriber.phone}
    channels = [(c, address[c]) for c in wanted if address[c]]
    if not channels:  # the preferred channel has no address: fall back to the other one
        channels = [(c, address[c]) for c in ("email", "sms") if address[c]][:1]
    return channels


def _text(link: PrescriberLink, channel: str, *, reminder: bool, url: str) -> tuple[str, str]:
    """(subject, body) for one channel; ``url`` is the placeholder when stored."""
    prescriber = link.prescriber
    until = timezone.localtime(link.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    if channel == "sms":
        lead = "Reminder: a" if reminder else "A"
        return "", f"Rx Workflow Hub: {lead} prescription request awaits your answer. {url} (single use, until {until})"
    subject = "Reminder: prescription request awaiting your answer" if reminder else \
        "Prescription request awaiting your answer"
    body = (
        f"Dear {prescriber.first_name} {prescriber.last_name}"
        f"{', ' + prescriber.credentials if prescriber.credentials else ''},\n\n"
        f"{'This is a reminder: a' if reminder else 'A'} prescription refill or renewal request is waiting for your "
        f"answer. Open the secure link below to review it and approve, approve with changes, or deny it:\n\n"
        f"{url}\n\n"
        f"The link works once and expires at {until}. If it has expired, the pharmacy team will follow up.\n"
        f"If you did not expect this message, do not open the link; tell the pharmacy.\n\n"
        f"— Rx Workflow Hub\n"
    )
    return subject, body


def _enqueue(link: PrescriberLink, *, reminder: bool, actor: Actor) -> list[OutboxMessage]:
    sent = []
    for channel, destination in _channels(link.prescriber):
        subject, text = _text(link, channel, reminder=reminder, url=PLACEHOLDER)
        event = "reminder" if reminder else "link"
        sent.append(outbox_enqueue(
            kind=f"{channel}:{KIND_PREFIX}{'-reminder' if reminder else ''}", payload=text, transport=channel,
            destination=destination, subject=subject, content_type="text/plain", actor=actor,
            dedupe_key=f"prescriber-link:{link.pk}:{event}:{channel}", related=link,
            reason=f"Prescriber approval {event} for refill request {link.request_id}"))
    return sent


def render_link_message(message: OutboxMessage) -> str:
    """Outbox payload renderer (registered in refills/apps.py): puts the real URL in at delivery."""
    if PLACEHOLDER not in message.payload or message.related_model != "refills.prescriberlink":
        return message.payload
    link = PrescriberLink.objects.filter(pk=message.related_id).first()
    if link is None:
        return message.payload.replace(PLACEHOLDER, "(link withdrawn)")
    return message.payload.replace(PLACEHOLDER, link_url(link))


# --- creating -------------------------------------------------------------------------------------

def link_create_and_send(*, request: RefillRequest, actor: Actor) -> PrescriberLink:
    """Create the request's link and queue it to the prescriber (e-mail and/or text per their
    preference). Runs inside the forward's transaction; older active links are revoked."""
    prescriber = request.prescriber or request.prescription.prescriber
    if not _channels(prescriber):
        raise DomainError(f"{prescriber} has no e-mail address or mobile number for approval links; "
                          f"call the office instead.", code="prescriber_unreachable")
    with transaction.atomic():
        now = timezone.now()
        for old in PrescriberLink.objects.select_for_update().filter(request=request, status=LinkStatus.ACTIVE):
            old.status = LinkStatus.REVOKED
            save_with_history(old, actor=actor, reason="Replaced by a new link", update_fields=["status"])
        salt = secrets.token_urlsafe(32)
        link = PrescriberLink(request=request, prescriber=prescriber, token_salt=salt,
                              token_hash=token_hash(_token_for(salt)), expires_at=now + timedelta(hours=link_hours()))
        save_with_history(link, actor=actor, reason=f"Approval link for refill request {request.pk}")
        messages = _enqueue(link, reminder=False, actor=actor)
        link.channels = [m.transport for m in messages]
        save_with_history(link, actor=actor, reason="Link queued to the prescriber", update_fields=["channels"])
        record_event(kind="refill.link_created", actor=actor, subject=request, patient_id=request.patient_id,
                     summary=f"Approval link sent by {', '.join(link.channels)}",
                     data={"link_id": link.pk, "prescriber_id": prescriber.pk, "channels": link.channels,
                           "expires_at": link.expires_at.isoformat()})
    return link


# --- opening and answering ------------------------------------------------------------------------

def _check(link: PrescriberLink, req: RefillRequest, now: datetime) -> None:
    if link.status == LinkStatus.USED:
        raise LinkUsed("This link was already used to answer the request; each link works once.")
    if link.status == LinkStatus.EXPIRED or link.expires_at <= now:
        raise LinkExpired("The link has expired. The pharmacy team has the request and will follow up.")
    if link.status == LinkStatus.REVOKED:
        raise LinkClosed("A newer link replaced this one, or the request was withdrawn.")
    prescriber_id = req.prescriber_id or req.prescription.prescriber_id
    if link.prescriber_id != prescriber_id:
        raise LinkWrongPrescriber("This request now belongs to another prescriber; the link no longer applies.")
    if req.status != S.AWAITING_PRESCRIBER:
        raise LinkClosed(f"The request is already {req.get_status_display().lower()}; nothing more is needed.")


def _find(token: str) -> PrescriberLink:
    if not token or len(token) > 128:
        raise LinkNotFound("The link is incomplete or was changed. Open it again from the message you received.")
    link = PrescriberLink.objects.select_related("prescriber").filter(token_hash=token_hash(token)).first()
    if link is None:
        raise LinkNotFound("The link is incomplete or was changed. Open it again from the message you received.")
    return link


def prescriber_link_open(*, token: str) -> PrescriberLink:
    """A valid link with its request and context loaded (read only; raises a LinkError)."""
    from django.db.models import Prefetch

    from pharmacy.models import Fill

    link = _find(token)
    req = (RefillRequest.objects.select_related("patient", "prescription__drug", "prescription__prescriber",
                                                "pharmacy", "prescription__pharmacy")
           .prefetch_related(Prefetch("prescription__fills", queryset=Fill.objects.order_by("-fill_date")))
           .get(pk=link.request_id))
    _check(link, req, timezone.now())
    link.request = req
    return link


def prescriber_link_answer(*, token: str, decision: str, note: str = "", quantity=None, days_supply: int | None = None,
                           refills: int | None = None, reason: str = "", reason_code: str = "AF",
                           ip: str | None = None, override_reason: str = "") -> RefillRequest:
    """The prescriber's answer through the link: the link is the credential. One transaction:
    the link locked and checked, marked used, the decision recorded (approve / approve with
    changes / deny, the NCPDP message queued by the decision service), the audit event written.
    Any refusal (invalid link, bad change) leaves everything as it was."""
    if decision not in DECISIONS:
        raise ValidationError({"decision": f"Unknown decision {decision!r}."})
    with transaction.atomic():
        # Lock order everywhere: the request, then its link (as forwarding and expiry do).
        found = _find(token)
        req = RefillRequest.objects.select_for_update(of=("self",)).select_related("prescription").get(
            pk=found.request_id)
        link = PrescriberLink.objects.select_for_update(of=("self",)).select_related("prescriber").get(pk=found.pk)
        now = timezone.now()
        _check(link, req, now)
        prescriber = link.prescriber
        link.status, link.used_at, link.used_from_ip = LinkStatus.USED, now, ip
        save_with_history(link, actor=LINK_ACTOR, reason=f"Answered by {prescriber} ({decision})",
                          update_fields=["status", "used_at", "used_from_ip"])
        signed = f"{prescriber} via signed link"
        if decision == "new_prescription":
            from .new_prescriptions import refill_request_await_new_prescription

            req = refill_request_await_new_prescription(
                request_id=req.pk, actor=LINK_ACTOR, note=f"{note.strip()} ({signed})" if note.strip() else signed)
        elif decision == "deny":
            req = services.refill_request_deny(request_id=req.pk, actor=LINK_ACTOR,
                                               reason=f"{reason.strip()} ({signed})" if reason.strip() else "",
                                               reason_code=reason_code)
        else:
            changes = {"quantity": quantity, "days_supply": days_supply, "refills": refills} \
                if decision == "approve_with_changes" else {}
            if decision == "approve_with_changes" and all(v is None for v in changes.values()):
                raise ValidationError({"quantity": "Give the quantity, days supply or refills you want changed."})
            # An active allergy conflict: the prescriber approves over it only with a reason, recorded
            # in the decision (override_reason, overridden_findings) and its history row.
            why = f"{override_reason.strip()} ({signed})" if override_reason.strip() else ""
            req = services.refill_request_approve(request_id=req.pk, actor=LINK_ACTOR,
                                                  note=f"{note.strip()} ({signed})" if note.strip() else signed,
                                                  override_reason=why, **changes)
        record_event(kind="refill.link_used", actor=LINK_ACTOR, subject=req, patient_id=req.patient_id,
                     summary=f"{prescriber} answered by link: {req.get_status_display()}",
                     data={"link_id": link.pk, "prescriber_id": prescriber.pk, "decision": decision, "ip": ip,
                           "quantity": str(quantity) if quantity is not None else None, "days_supply": days_supply,
                           "refills": refills, "reason_code": reason_code if decision == "deny" else None,
                           "overridden": list(req.overridden_findings or [])})
    return req


# --- reminders and escalation ---------------------------------------------------------------------

@dataclass
class LinkRun:
    reminded: int = 0
    expired: int = 0
    escalated: int = 0

    def __str__(self) -> str:
        return f"{self.reminded} reminded, {self.expired} expired, {self.escalated} escalated to the pharmacist queue"


def _remind(link_id: int, now: datetime) -> bool:
    with transaction.atomic():
        link = (
            PrescriberLink.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("prescriber", "request")
            .filter(pk=link_id, status=LinkStatus.ACTIVE, reminded_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if link is None or link.request.status != S.AWAITING_PRESCRIBER:
            return False
        _enqueue(link, reminder=True, actor=LINK_ACTOR)
        link.reminded_at = now
        save_with_history(link, actor=LINK_ACTOR, reason=f"No answer after {reminder_hours()} h: reminder sent",
                          update_fields=["reminded_at"])
    return True


def _expire(link_id: int, now: datetime) -> tuple[bool, bool]:
    """Mark one link expired; when it was the request's last live link and the request still
    awaits the prescriber, escalate: awaiting_prescriber → expired → needs_review."""
    request_id = PrescriberLink.objects.filter(pk=link_id).values_list("request_id", flat=True).first()
    if request_id is None:
        return False, False
    with transaction.atomic():
        req = RefillRequest.objects.select_for_update().get(pk=request_id)  # request, then link
        link = (PrescriberLink.objects.select_for_update()
                .filter(pk=link_id, status=LinkStatus.ACTIVE, expires_at__lte=now).first())
        if link is None:  # answered or handled by a concurrent run meanwhile
            return False, False
        link.status = LinkStatus.EXPIRED
        save_with_history(link, actor=LINK_ACTOR, reason=f"Expired unanswered after {link_hours()} h",
                          update_fields=["status"])
        live = PrescriberLink.objects.filter(request=req, status=LinkStatus.ACTIVE, expires_at__gt=now).exists()
        if req.status != S.AWAITING_PRESCRIBER or live:
            return True, False
        why = f"The prescriber did not answer the approval link within {link_hours()} h"
        _move(req, S.EXPIRED, actor=LINK_ACTOR, reason=why)
        req.note = f"{why}; back to the pharmacist."
        _move(req, S.NEEDS_REVIEW, actor=LINK_ACTOR, reason=f"Escalated to the pharmacist queue: {why.lower()}",
              fields=("note",))
        record_event(kind="refill.link_expired", actor=LINK_ACTOR, subject=req, patient_id=req.patient_id,
                     summary="Prescriber link expired unanswered; escalated to the pharmacist queue",
                     data={"link_id": link.pk, "prescriber_id": link.prescriber_id})
    return True, True


def prescriber_links_process(*, now: datetime | None = None) -> LinkRun:
    """Remind links unanswered for PRESCRIBER_REMINDER_HOURS, expire and escalate the expired
    ones. Safe to run twice at once (row locks with the state re-checked under them, dedupe keys
    on the reminders)."""
    now = now or timezone.now()
    run = LinkRun()
    active = PrescriberLink.objects.filter(status=LinkStatus.ACTIVE)
    for link_id in active.filter(expires_at__lte=now).order_by("expires_at").values_list("pk", flat=True):
        expired, escalated = _expire(link_id, now)
        run.expired += expired
        run.escalated += escalated
    due = active.filter(expires_at__gt=now, reminded_at__isnull=True,
                        created_at__lte=now - timedelta(hours=reminder_hours()),
                        request__status=S.AWAITING_PRESCRIBER)
    for link_id in due.order_by("created_at").values_list("pk", flat=True):
        run.reminded += _remind(link_id, now)
    return run
