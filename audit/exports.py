"""CSV exports streamed row by row (``.iterator()``), so a large export never sits in memory.

* audit events for a date range;
* history (every history table) for a date range, optionally limited to one patient;
* the controlled-substance report: every refill/renewal decision on a Schedule II–V prescription,
  with who decided and when (21 CFR 1304.04 requires controlled-substance records to be readily
  retrievable; 21 CFR 1306.12/1306.22 govern the refills themselves).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from pharmacy import registry

from .history import history_models, patient_q

CHUNK = 2000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    text = str(value)
    # CSV formula injection: a spreadsheet must not execute a cell (OWASP CSV injection).
    return "'" + text if text.startswith(FORMULA_START) else text


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the local time zone."""
    return (
        timezone.make_aware(datetime.combine(start, time.min)),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min)),
    )


class _Echo:
    def write(self, value):
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_cell(v) for v in row])


AUDIT_HEADER = [
    "sequence",
    "occurred_at",
    "kind",
    "actor",
    "subject_type",
    "subject_id",
    "patient_id",
    "ip_address",
    "summary",
    "prev_hash",
    "hash",
]


def audit_event_rows(*, start: date, end: date, patient_id: int | None = None) -> Iterator[list]:
    from .models import AuditEvent

    lo, hi = day_range(start, end)
    qs = AuditEvent.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi).order_by("sequence")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    yield AUDIT_HEADER
    for e in qs.iterator(chunk_size=CHUNK):
        yield [
            e.sequence,
            e.occurred_at,
            e.kind,
            e.actor_label,
            e.subject_type,
            e.subject_id,
            e.patient_id,
            e.ip_address,
            e.summary,
            e.prev_hash,
            e.hash,
        ]


HISTORY_HEADER = [
    "history_date",
    "model",
    "object_id",
    "action",
    "user",
    "reason",
    "changed_fields",
    "history_id",
]
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
SKIP_FIELDS = {"updated_at"}


def history_rows(*, start: date, end: date, patient_id: int | None = None) -> Iterator[list]:
    """One row per history record, model by model, with the names of the fields that changed
    since the object's previous record in the range."""
    lo, hi = day_range(start, end)
    yield HISTORY_HEADER
    for model, hmodel in history_models():
        qs = hmodel.objects.filter(history_date__gte=lo, history_date__lt=hi)
        if patient_id is not None:
            query = patient_q(model, patient_id)
            if query is None:
                continue
            qs = qs.filter(query)
        pk_name = model._meta.pk.attname
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if f.attname not in SKIP_FIELDS and f.attname != pk_name
        ]
        qs = qs.select_related("history_user").order_by(pk_name, "history_date", "history_id")
        previous = None
        for record in qs.iterator(chunk_size=CHUNK):
            object_id = getattr(record, pk_name)
            changed = ""
            if (
                previous is not None
                and getattr(previous, pk_name) == object_id
                and record.history_type == "~"
            ):
                changed = " ".join(
                    f for f in fields if getattr(record, f, None) != getattr(previous, f, None)
                )
            user = record.history_user
            yield [
                record.history_date,
                model._meta.label,
                object_id,
                ACTIONS.get(record.history_type, "?"),
                user.get_username() if user else "",
                record.history_change_reason or "",
                changed,
                record.history_id,
            ]
            previous = record


CONTROLLED_HEADER = [
    "decided_at",
    "request_id",
    "kind",
    "status",
    "dea_schedule",
    "drug",
    "strength",
    "rx_number",
    "patient_id",
    "patient_mrn",
    "prescriber",
    "prescriber_dea",
    "decided_by",
    "denial_reason_code",
    "approved_quantity",
    "approved_days_supply",
    "approved_refills",
]
CONTROLLED_SCHEDULES = ("2", "3", "4", "5")


def controlled_substance_rows(*, start: date, end: date) -> Iterator[list]:
    """Controlled-substance decisions (DEA schedules II-V) made in the period, one row each.

    The rows come from the workflow app that registered the ``controlled_substance_decisions``
    export (refills, ``pharmacy.registry``); audit never imports a workflow app."""
    lo, hi = day_range(start, end)
    yield CONTROLLED_HEADER
    provider = registry.export("controlled_substance_decisions")
    if provider is not None:
        yield from provider(lo=lo, hi=hi, schedules=CONTROLLED_SCHEDULES, chunk_size=CHUNK)
