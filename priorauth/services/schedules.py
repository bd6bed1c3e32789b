"""Scheduled PA work: polling open cases' payer status, expiry and renewal."""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from pharmacy.errors import DomainError
from pharmacy.secrets import secret_named

from .. import conf
from ..choices import (
    AWAITING_PAYER,
    OPEN_STATUSES,
    ResponseSource,
    Trigger,
)
from ..models import (
    PACase,
)
from ._common import STATUS_ACTOR, S, _locked, _move
from .cases import pa_case_open
from .responses import pa_response_ingest


def pa_poll_open(*, limit: int = 200) -> dict:
    """Ask each payer with a status URL about cases awaiting it (GET status_url?case=…)."""
    counts = {"polled": 0, "answers": 0, "errors": 0}
    cases = (
        PACase.objects.filter(status__in=[*AWAITING_PAYER, S.PENDED])
        .select_related("payer")
        .order_by("decision_due_at")[:limit]
    )
    for case in cases:
        endpoint = conf.payer_endpoint(case.payer.endpoint_key if case.payer else "")
        url = endpoint.get("status_url")
        if not url:
            continue
        last = case.submissions.order_by("-id").first()
        query = urllib.parse.urlencode(
            {
                "case": case.payer_case_id or "",
                "reference": f"RXHUB-PA-{case.pk}",
                "message_id": last.message_id if last else "",
            }
        )
        headers = {"Accept": "application/fhir+json, application/xml"}
        token = secret_named(endpoint.get("token_env") or "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        counts["polled"] += 1
        try:
            request = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}{query}", headers=headers)
            with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 (configured endpoint)
                body = answer.read(2_000_000).decode("utf-8", "replace").strip()
        except (urllib.error.URLError, OSError):
            counts["errors"] += 1
            continue
        if not body:
            continue  # nothing new
        try:
            response = pa_response_ingest(case_id=case.pk, text=body, source=ResponseSource.POLL)
        except DomainError:
            counts["errors"] += 1
            continue
        counts["answers"] += 0 if response.is_malformed else 1
        counts["errors"] += 1 if response.is_malformed else 0
    return counts


def pa_expiry_sweep(*, today: date | None = None) -> dict:
    """Approved cases past their expiration become expired; those expiring within the window
    (default 30 days) get a renewal case opened once."""
    today = today or timezone.localdate()
    window = timedelta(days=conf.renewal_window_days())
    counts = {"expired": 0, "renewals": 0, "skipped": 0}
    for case_id in list(
        PACase.objects.filter(status=S.APPROVED, expiration_date__lt=today).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            case = _locked(case_id)
            if case.status == S.APPROVED:
                _move(
                    case,
                    S.EXPIRED,
                    actor=STATUS_ACTOR,
                    reason=f"Authorization expired on {case.expiration_date}",
                )
                counts["expired"] += 1
    due = (
        PACase.objects.filter(
            status__in=[S.APPROVED, S.EXPIRED],
            expiration_date__lte=today + window,
            expiration_date__gte=today - window,
        )
        .exclude(renewals__isnull=False)
        .values_list("pk", "prescription_id")
    )
    for case_id, rx_id in list(due):
        if PACase.objects.filter(prescription_id=rx_id, status__in=OPEN_STATUSES).exists():
            counts["skipped"] += 1
            continue
        case = PACase.objects.get(pk=case_id)
        try:
            pa_case_open(
                prescription_id=rx_id,
                actor=STATUS_ACTOR,
                trigger=Trigger.RENEWAL,
                renewal_of=case,
                bin=case.payer.bin if case.payer else "",
                pcn=case.payer.pcn if case.payer else "",
                today=today,
            )
        except DomainError:
            counts["skipped"] += 1
            continue
        counts["renewals"] += 1
    return counts
