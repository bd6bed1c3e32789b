"""Detection engine: open a refill (or renewal) request for every active prescription whose
supply runs out within the look-ahead window.

Set-based: prescriptions are read in chunks, each chunk with ONE query for the prescriptions
and ONE for their fills (never a query per prescription); run-out dates come from the pure
rules (refills/eligibility.compute_run_out_and_kind, with PQA carry-over of early fills);
requests are written with one bulk INSERT per chunk. Two runs at once are safe: the partial
unique index "one open request per prescription" makes the loser's rows conflict and be skipped.
Evaluation (eligibility + protocol) follows separately, per request, in workers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from pharmacy.actors import actor_user, system_actor
from pharmacy.models import Fill, Prescription

from .choices import OPEN_STATUSES, RefillStatus, RequestKind, RequestSource
from .conf import eligibility_policy, lookahead_days
from .eligibility import PrescriptionFacts, compute_run_out_and_kind
from .facts import COUNTED_FILL_STATUSES
from .models import RefillRequest
from .supply import FillRecord

DETECTION = system_actor("system:refill-detection")
CHUNK = 5000


@dataclass
class DetectionResult:
    examined: int = 0
    due: int = 0
    opened: int = 0
    skipped_open: int = 0
    by_kind: dict = field(default_factory=lambda: defaultdict(int))
    request_ids: list[int] = field(default_factory=list)


def candidate_prescriptions(today: date, lookahead: int):
    """Active (or expired/completed, which may need a renewal) prescriptions with a recent fill
    and no open request; a prescription filled after the window cannot be due."""
    open_request = RefillRequest.objects.filter(prescription=OuterRef("pk"), status__in=OPEN_STATUSES)
    return (Prescription.objects.filter(status__in=["active", "expired", "completed"])
            .annotate(last_fill=Max("fills__fill_date"))
            .filter(last_fill__isnull=False, last_fill__lte=today + timedelta(days=lookahead),
                    last_fill__gte=today - timedelta(days=730))
            .exclude(Exists(open_request))
            .order_by("pk"))


def detect_refills(*, today: date | None = None, lookahead: int | None = None, dry_run: bool = False,
                   progress=None) -> DetectionResult:
    today = today or timezone.localdate()
    lookahead = lookahead_days() if lookahead is None else lookahead
    policy = eligibility_policy()
    result = DetectionResult()
    user = actor_user(DETECTION)
    columns = ("pk", "patient_id", "pharmacy_id", "prescriber_id", "status", "dea_schedule", "refills_authorized",
               "refills_remaining", "written_date", "expiration_date", "days_supply", "drug__is_urgent",
               "patient__species")
    base = candidate_prescriptions(today, lookahead)
    bounds = Prescription.objects.aggregate(low=Min("pk"), high=Max("pk"))
    # Chunks are ranges of ids, not LIMITs: each query aggregates only its own range's fills, so
    # the cost stays linear in the table size (a LIMIT after GROUP BY re-aggregates the rest).
    for low in range(bounds["low"] or 0, (bounds["high"] or -1) + 1, CHUNK):
        rows = list(base.filter(pk__gte=low, pk__lt=low + CHUNK).values(*columns))
        if not rows:
            continue
        fills = defaultdict(list)
        for f in (Fill.objects.filter(prescription_id__in=[r["pk"] for r in rows], status__in=COUNTED_FILL_STATUSES)
                  .order_by("prescription_id", "fill_date").values_list("prescription_id", "fill_date", "days_supply")):
            fills[f[0]].append(FillRecord(f[1], f[2]))
        new = []
        for row in rows:
            records = tuple(fills.get(row["pk"], ()))
            facts = PrescriptionFacts(
                status=row["status"], dea_schedule=row["dea_schedule"], refills_authorized=row["refills_authorized"],
                refills_remaining=row["refills_remaining"], written_date=row["written_date"],
                expiration_date=row["expiration_date"], days_supply=row["days_supply"],
                last_fill=records[-1] if records else None, fills=records,
                is_veterinary=row["patient__species"] != "human")
            due = compute_run_out_and_kind(prescription=facts, today=today, lookahead_days=lookahead, policy=policy)
            if due is None:
                continue
            run_out, kind = due
            result.due += 1
            result.by_kind[kind] += 1
            new.append(RefillRequest(
                prescription_id=row["pk"], patient_id=row["patient_id"], pharmacy_id=row["pharmacy_id"],
                prescriber_id=row["prescriber_id"], kind=kind if kind in RequestKind.values else RequestKind.REFILL,
                source=RequestSource.DETECTION, status=RefillStatus.RECEIVED, is_urgent=row["drug__is_urgent"],
                run_out_date=run_out))
        result.examined += len(rows)
        if new and not dry_run:
            result.request_ids.extend(_insert(new, user, today))
        if progress:
            progress.advance(len(rows))
    result.opened = len(result.request_ids)
    result.skipped_open = result.due - result.opened if not dry_run else 0
    return result


def _insert(new: list[RefillRequest], user, today: date) -> list[int]:
    """Bulk insert; rows that conflict with an open request (a concurrent run) are skipped.
    History rows are written in bulk for the rows that went in."""
    started = timezone.now()
    RefillRequest.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    mine = list(RefillRequest.objects.filter(
        prescription_id__in=[r.prescription_id for r in new], source=RequestSource.DETECTION,
        status=RefillStatus.RECEIVED, created_at__gte=started))
    RefillRequest.history.bulk_history_create(
        mine, batch_size=1000, default_user=user,
        default_change_reason=f"Supply runs out within the look-ahead window (detection {today})")
    return [r.pk for r in mine]


def evaluate_opened(request_ids: list[int], *, progress=None) -> dict[str, int]:
    """Eligibility + protocol for newly opened requests (one at a time, each in its own transaction)."""
    from pharmacy.errors import TransitionNotAllowed

    from .services import refill_request_evaluate

    outcome: dict[str, int] = defaultdict(int)
    for pk in request_ids:
        try:
            req = refill_request_evaluate(request_id=pk)
            outcome[req.status] += 1
        except TransitionNotAllowed:
            outcome["already_evaluated"] += 1
        if progress:
            progress.advance()
    return dict(outcome)
