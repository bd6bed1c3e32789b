"""Reads shared by the refill pages and the API."""
from __future__ import annotations

from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from pharmacy.dashboard import QueueSummary
from pharmacy.models import Fill
from pharmacy.roles import PRESCRIBER, user_roles
from pharmacy.scoping import scope_to_pharmacy, scope_to_prescriber
from pharmacy.selectors import drug_interactions, therapeutic_duplicates

from . import authority
from .choices import OPEN_STATUSES, RefillStatus
from .models import RefillRequest

WORK_STATUSES = (RefillStatus.RECEIVED, RefillStatus.NEEDS_REVIEW, RefillStatus.AWAITING_PRESCRIBER,
                 RefillStatus.EXPIRED)


def refill_request_list(*, user) -> QuerySet[RefillRequest]:
    """Requests the user may see, ordered by urgency (urgent drug classes, days to run-out, age)."""
    qs = RefillRequest.objects.select_related(
        "patient", "prescription__drug", "prescription__prescriber", "pharmacy", "claimed_by", "decided_by")
    roles = user_roles(user)
    if roles == {PRESCRIBER}:  # a prescriber sees only their own patients' requests
        qs = qs.filter(prescription__prescriber__user=user)
    qs = scope_to_pharmacy(qs, user, pharmacy_path="prescription__pharmacy")  # a partner: its pharmacies only
    return qs.order_by("-is_urgent", "run_out_date", "created_at", "id")


def refill_queue(*, user) -> QuerySet[RefillRequest]:
    return refill_request_list(user=user).filter(status__in=WORK_STATUSES)


def refill_request_detail(*, request_id: int, user) -> RefillRequest:
    fills = Fill.objects.select_related("pharmacy").order_by("-fill_date")
    return refill_request_list(user=user).prefetch_related(
        Prefetch("prescription__fills", queryset=fills),
        "patient__allergies", "patient__diagnoses", "patient__coverages",
        Prefetch("patient__lab_results"), "links",
    ).get(pk=request_id)


def shadow_agreement(*, days: int = 90) -> dict:
    """How often a person's decision matched the protocol's suggestion (shadow/assist modes)."""
    since = timezone.now() - timezone.timedelta(days=days)
    decided = RefillRequest.objects.filter(
        protocol_mode__in=["shadow", "assist"], decided_at__gte=since,
        status__in=[RefillStatus.APPROVED, RefillStatus.APPROVED_WITH_CHANGES, RefillStatus.DENIED,
                    RefillStatus.SENT_TO_PHARMACY, RefillStatus.FILLED, RefillStatus.PICKED_UP,
                    RefillStatus.AWAITING_PRESCRIBER])
    stats = decided.aggregate(
        total=Count("id"),
        agree=Count("id", filter=(Q(protocol_suggestion="approve") & ~Q(status=RefillStatus.DENIED)
                                  & ~Q(status=RefillStatus.AWAITING_PRESCRIBER))
                    | (~Q(protocol_suggestion="approve") & Q(status__in=[RefillStatus.DENIED,
                                                                         RefillStatus.AWAITING_PRESCRIBER]))))
    total = stats["total"] or 0
    return {"total": total, "agree": stats["agree"] or 0, "rate": (stats["agree"] / total) if total else None}


def queue_summary(*, user) -> QueueSummary:
    stats = refill_queue(user=user).aggregate(count=Count("id"), oldest=Min("created_at"),
                                              urgent=Count("id", filter=Q(is_urgent=True)))
    awaiting = refill_queue(user=user).filter(status=RefillStatus.AWAITING_PRESCRIBER).count()
    return QueueSummary(key="refills", title="Refills and renewals", url=reverse("refills:queue"),
                        count=stats["count"], oldest_at=stats["oldest"], urgent=stats["urgent"],
                        detail=f"{awaiting} awaiting prescriber")


def patient_panels(*, patient, user) -> list[dict]:
    # A prescriber sees their own requests for the patient, not their colleagues' (minimum necessary).
    requests = list(scope_to_prescriber(RefillRequest.objects.filter(patient=patient), user)
                    .select_related("prescription__drug").order_by("-created_at")[:10])
    return [{"title": "Refill requests", "template": "refills/_patient_panel.html",
             "context": {"requests": requests, "open_statuses": OPEN_STATUSES}}]


# --- the queue page: filters in the URL, status chips with counts, next open item --------------------

DEFAULT_QUEUE_STATUSES = (RefillStatus.RECEIVED, RefillStatus.NEEDS_REVIEW, RefillStatus.AWAITING_PRESCRIBER,
                          RefillStatus.EXPIRED)
# What a pharmacist decides now (the "next open item" after a decision is one of these).
DECIDE_NOW_STATUSES = (RefillStatus.RECEIVED, RefillStatus.NEEDS_REVIEW, RefillStatus.EXPIRED)


def queue_filter_data(query):
    """The queue's filters from a QueryDict (the URL); no status means the open statuses."""
    data = query.copy()
    data.pop("page", None)
    if not data.getlist("status"):
        data.setlist("status", list(DEFAULT_QUEUE_STATUSES))
    return data


def refill_queue_filtered(*, user, query, request=None):
    from .filters import RefillRequestFilter

    return RefillRequestFilter(queue_filter_data(query), queryset=refill_request_list(user=user), request=request)


def refill_status_counts(*, user, query, request=None) -> dict[str, int]:
    """How many requests each status chip would show with the other filters kept: one query,
    each status counted up to pharmacy.pagination.COUNT_CAP + 1 (shown "1,000+"), so the cost
    does not grow with the queue. This is the cheap count selector for chips and dashboards."""
    from pharmacy.pagination import capped_counts

    from .filters import RefillRequestFilter

    data = query.copy()
    data.pop("page", None)
    data.setlist("status", [])
    qs = RefillRequestFilter(data, queryset=refill_request_list(user=user), request=request).qs
    return capped_counts(qs, field_name="status", values=[s for s, _ in RefillStatus.choices])


def refill_next_open(*, user, query, after_pk: int, request=None) -> RefillRequest | None:
    """The next request to decide in the same filtered queue (not the one just decided, not claimed
    by someone else)."""
    qs = refill_queue_filtered(user=user, query=query, request=request).qs
    return (qs.filter(status__in=DECIDE_NOW_STATUSES).exclude(pk=after_pk)
            .filter(Q(claimed_by__isnull=True) | Q(claimed_by=user)).first())


def controlled_substance_decisions(*, lo, hi, schedules, chunk_size: int = 2000):
    """Decided refill requests of controlled prescriptions in [lo, hi): the rows of audit's
    controlled-substance export (registered as ``controlled_substance_decisions``, refills/apps.py)."""
    qs = (
        RefillRequest.objects.filter(
            prescription__dea_schedule__in=schedules,
            decided_at__gte=lo,
            decided_at__lt=hi,
            decided_by__isnull=False,
        )
        .select_related("prescription__drug", "prescription__prescriber", "patient", "decided_by")
        .order_by("decided_at", "id")
    )
    for r in qs.iterator(chunk_size=chunk_size):
        rx = r.prescription
        prescriber = rx.prescriber
        yield [
            r.decided_at,
            r.pk,
            r.kind,
            r.status,
            rx.dea_schedule,
            rx.drug.name,
            rx.drug.strength,
            getattr(rx, "rx_number", ""),
            r.patient_id,
            r.patient.mrn,
            f"{prescriber.last_name}, {prescriber.first_name}",
            prescriber.dea_number,
            r.decided_by.get_username(),
            r.denial_reason_code,
            r.approved_quantity,
            r.approved_days_supply,
            r.approved_refills,
        ]


def refill_request_dur(req: RefillRequest, *, change=None) -> dict:
    """Drug utilization review shown before approval (issue 13 items 4 and 6) on the request page,
    the prescriber link and the API detail: the ONC high-priority interactions (and warfarin +
    NSAIDs) with the patient's other active prescriptions, therapeutic duplications, and whether
    quantity and days supply (as written, or as changed) match a readable sig."""
    rx = req.prescription
    return {"interactions": drug_interactions(rx), "therapeutic_duplications": therapeutic_duplicates(rx),
            "quantity_warnings": authority.quantity_warnings(req, rx, change or authority.NO_CHANGE)}
