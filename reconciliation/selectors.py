"""Reads shared by the reconciliation pages and the API (fixed query counts per page)."""
from __future__ import annotations

from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.urls import reverse
from django_q.models import Task

from pharmacy.dashboard import QueueSummary
from pharmacy.models import AllergyFlag, Prescription
from pharmacy.scoping import is_partner, scope_patients

from .choices import OPEN_TASK_STATUSES, DiscrepancyStatus, InboundStatus, MatchItemStatus, TaskKind
from .models import Discrepancy, EhrLink, InboundMessage, PatientMatchItem, ReconciliationTask

PULL_GROUP = "ehr-pull"  # django-q2 group (and name prefix) of the EHR pull tasks


def task_rows(*, user=None) -> QuerySet[ReconciliationTask]:
    """Tasks by priority, then age (oldest first), without per-task counts (pages order and page
    these through the open-task partial index, then count discrepancies for the page alone)."""
    return (ReconciliationTask.objects.select_related("patient", "inbound_message")
            .order_by("priority_rank", "created_at", "id"))


def task_queue_filtered(qs: QuerySet[ReconciliationTask], query) -> QuerySet[ReconciliationTask]:
    """The queue's search and toggles (status is the caller's): patient name, MRN, birth date, or a
    drug named in one of the task's discrepancies (an EXISTS, no join that repeats tasks);
    ``high`` = high priority only, ``discharge`` = discharge tasks only."""
    from django.db.models import Exists, OuterRef

    from pharmacy.queue_filters import patient_drug_search

    from .choices import Priority, TaskKind
    from .models import Discrepancy

    def drug_named(word: str):
        return Exists(Discrepancy.objects.filter(task=OuterRef("pk")).filter(
            Q(summary__icontains=word) | Q(prescription__drug__name__icontains=word)))

    if query.get("q"):
        qs = patient_drug_search(qs, query["q"], drug=None, extra_q=drug_named)
    if query.get("high"):
        qs = qs.filter(priority=Priority.HIGH)
    if query.get("discharge"):
        qs = qs.filter(kind=TaskKind.DISCHARGE)
    return qs


def with_discrepancy_counts(qs: QuerySet[ReconciliationTask]) -> QuerySet[ReconciliationTask]:
    return qs.annotate(proposed=Count("discrepancies", filter=Q(discrepancies__status=DiscrepancyStatus.PROPOSED)),
                       total=Count("discrepancies"))


def task_list(*, user=None) -> QuerySet[ReconciliationTask]:
    """Tasks by priority, then age, each with its proposed/total discrepancy counts."""
    return with_discrepancy_counts(task_rows(user=user))


def task_queue(*, user=None) -> QuerySet[ReconciliationTask]:
    return task_list(user=user).filter(status__in=OPEN_TASK_STATUSES)


def task_detail(*, task_id: int, user=None) -> ReconciliationTask:
    discrepancies = Discrepancy.objects.select_related("prescription__drug", "decided_by", "created_prescription__drug",
                                                       "created_allergy").order_by("position", "id")
    return (ReconciliationTask.objects.select_related("patient__primary_prescriber", "inbound_message", "completed_by")
            .prefetch_related(Prefetch("discrepancies", queryset=discrepancies)).get(pk=task_id))


def inbound_list(*, user=None) -> QuerySet[InboundMessage]:
    """Stored inbound messages; a partner (integrator account) sees only those about the patients of
    its own pharmacies (a feed account posts, but reads no one else's patients: 45 CFR 164.502(b))."""
    qs = InboundMessage.objects.select_related("patient").defer("payload").order_by("-received_at", "-id")
    if user is not None and is_partner(user):
        qs = scope_patients(qs, user, patient_path="patient")
    return qs


def match_item_queue(*, user=None) -> QuerySet[PatientMatchItem]:
    return (PatientMatchItem.objects.filter(status=MatchItemStatus.OPEN).select_related("inbound_message")
            .order_by("created_at", "id"))


def queue_summary(*, user) -> QueueSummary:
    stats = task_queue(user=user).aggregate(count=Count("id", distinct=True), oldest=Min("created_at"),
                                            urgent=Count("id", filter=Q(priority_rank=0), distinct=True),
                                            discharges=Count("id", filter=Q(kind=TaskKind.DISCHARGE), distinct=True))
    failed = InboundMessage.objects.filter(status=InboundStatus.FAILED).count()
    matches = PatientMatchItem.objects.filter(status=MatchItemStatus.OPEN).count()
    return QueueSummary(
        key="reconciliation",
        title="Medication reconciliation",
        url=reverse("reconciliation:queue"),
        count=stats["count"] or 0,
        oldest_at=stats["oldest"],
        urgent=stats["urgent"] or 0,
        detail=f"{stats['discharges'] or 0} discharge(s) · {matches} to match · {failed} failed message(s)",
    )


def patient_panels(*, patient, user) -> list[dict]:
    tasks = list(ReconciliationTask.objects.filter(patient=patient)
                 .annotate(proposed=Count("discrepancies", filter=Q(discrepancies__status=DiscrepancyStatus.PROPOSED)))
                 .order_by("-created_at")[:10])
    decided = list(Discrepancy.objects.filter(task__patient=patient).exclude(status=DiscrepancyStatus.PROPOSED)
                   .select_related("decided_by").order_by("-decided_at")[:10])
    links = list(EhrLink.objects.filter(patient=patient).order_by("ehr_system"))
    flags = list(AllergyFlag.objects.filter(prescription__patient=patient, cleared_at__isnull=True,
                                            prescription__status__in=["active", "pending", "on_hold"])
                 .select_related("prescription__drug", "allergy"))
    pull = last_pull(patient_id=patient.pk) if any(link.fhir_base_url for link in links) else None
    return [{"title": "Medication reconciliation", "template": "reconciliation/_patient_panel.html",
             "context": {"tasks": tasks, "decided": decided, "links": links, "flags": flags, "patient": patient,
                         "last_pull": pull}}]


def pending_prescriptions(*, patient_id: int) -> list[Prescription]:
    return list(Prescription.objects.filter(patient_id=patient_id, status="pending").select_related("drug"))


def last_pull(*, patient_id: int) -> dict | None:
    """The latest finished pull of this patient's record: when, and what came of it."""
    task = (Task.objects.filter(group=PULL_GROUP, name__startswith=f"{PULL_GROUP}:{patient_id}:")
            .order_by("-stopped").first())
    if task is None:
        return None
    result = task.result if isinstance(task.result, dict) else {"ok": False, "error": str(task.result or "")[:300]}
    return {"at": task.stopped, **result}
