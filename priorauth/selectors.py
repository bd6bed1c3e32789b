"""Reads shared by the PA pages, the API, the dashboard card and the patient panel."""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import median

from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from pharmacy.dashboard import QueueSummary
from pharmacy.roles import PRESCRIBER, user_roles
from pharmacy.scoping import is_partner, partner_pharmacies, scope_to_prescriber

from .choices import DECIDED_STATUSES, OPEN_STATUSES, WORK_STATUSES, CaseStatus
from .deadlines import case_clock
from .models import PACase, PAResponse, PASubmission, Payer


def pa_case_list(*, user) -> QuerySet[PACase]:
    """Cases the user may see, by payer deadline (soonest first), then age."""
    qs = PACase.objects.select_related("patient", "drug", "payer", "prescription__prescriber", "submitted_by")
    if user_roles(user) == {PRESCRIBER}:
        qs = qs.filter(prescription__prescriber__user=user)
    if is_partner(user):  # an integrator account: its pharmacies' cases and its payers' cases only
        qs = qs.filter(Q(prescription__pharmacy__in=partner_pharmacies(user)) | Q(payer__in=partner_payers(user)))
    return qs.order_by(*PACase._meta.ordering)


def partner_payers(user) -> QuerySet:
    return Payer.objects.filter(integrator_users=user).values("pk")


def pa_queue(*, user) -> QuerySet[PACase]:
    return pa_case_list(user=user).filter(status__in=OPEN_STATUSES)


def pa_case_detail(*, case_id: int, user) -> PACase:
    return (
        pa_case_list(user=user)
        .select_related("coverage", "criteria", "prescription__pharmacy")
        .prefetch_related(
            Prefetch("submissions", queryset=PASubmission.objects.select_related("outbox", "submitted_by")),
            Prefetch("responses", queryset=PAResponse.objects.order_by("-received_at")),
            "attachments",
            "rejections",
        )
        .get(pk=case_id)
    )


def clock(case: PACase, now=None):
    return case_clock(
        created_at=case.created_at,
        due_at=case.decision_due_at,
        decided=case.status not in (CaseStatus.SUBMITTED, CaseStatus.APPEALED, CaseStatus.PENDED),
        now=now or timezone.now(),
    )


def queue_summary(*, user) -> QueueSummary:
    qs = pa_queue(user=user)
    now = timezone.now()
    stats = qs.aggregate(
        count=Count("id"),
        oldest=Min("created_at"),
        overdue=Count(
            "id",
            filter=Q(
                decision_due_at__lt=now,
                status__in=[CaseStatus.SUBMITTED, CaseStatus.APPEALED, CaseStatus.PENDED],
            ),
        ),
        review=Count("id", filter=Q(status__in=WORK_STATUSES)),
        updates=Count("id", filter=~Q(attention="")),
    )
    return QueueSummary(
        key="priorauth",
        title="Prior authorization",
        url=reverse("priorauth:queue"),
        count=stats["count"],
        oldest_at=stats["oldest"],
        urgent=stats["overdue"],
        detail=f"{stats['review']} need a person · {stats['updates']} updates",
    )


def patient_panels(*, patient, user) -> list[dict]:
    cases = list(scope_to_prescriber(PACase.objects.filter(patient=patient), user)  # own cases for a prescriber
                 .select_related("drug").order_by("-created_at")[:10])
    return [
        {
            "title": "Prior authorizations",
            "template": "priorauth/_patient_panel.html",
            "context": {"cases": cases},
        }
    ]


def prescription_actions(*, prescriptions, user) -> dict[int, list[dict]]:
    """"Open PA case" on each active prescription of the patient page, for staff (the view that
    answers it, ``priorauth:open``, admits pharmacists, technicians and admins). No query."""
    from django.urls import reverse

    from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, has_role

    if not has_role(user, PHARMACIST, TECHNICIAN, ADMIN):
        return {}
    url = reverse("priorauth:open")
    return {rx.pk: [{"label": "Open PA case", "url": url, "fields": {"prescription": rx.pk}}]
            for rx in prescriptions if rx.status == "active"}


# --- analytics -----------------------------------------------------------------------------------


def _rate(part: int, whole: int):
    return round(part / whole, 3) if whole else None


def analytics(*, since=None) -> dict:
    """Cases by status, approval rate by payer and by drug, median turnaround, top denial reasons,
    and rollout agreement/error rates per payer × drug × mode."""
    qs = PACase.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    by_status = {row["status"]: row["n"] for row in qs.values("status").annotate(n=Count("id"))}
    rows = list(
        qs.values(
            "id",
            "status",
            "payer__name",
            "drug__name",
            "rollout_mode",
            "submitted_at",
            "decided_at",
            "denial_reasons",
            "agreement",
            "submitted_automatically",
            "auto_review",
        )
    )
    payer_stats: dict[str, Counter] = defaultdict(Counter)
    drug_stats: dict[str, Counter] = defaultdict(Counter)
    turnaround_hours: list[float] = []
    reasons: Counter = Counter()
    pairs: dict[tuple, dict] = {}
    for r in rows:
        payer, drug = r["payer__name"] or "(unknown payer)", r["drug__name"]
        decided = r["status"] in (CaseStatus.APPROVED, CaseStatus.DENIED, CaseStatus.EXPIRED) or (
            r["status"] == CaseStatus.APPEALED
        )
        approved = r["status"] in (CaseStatus.APPROVED, CaseStatus.EXPIRED)
        for stats, key in ((payer_stats, payer), (drug_stats, drug)):
            if decided:
                stats[key]["decided"] += 1
                stats[key]["approved"] += approved
        if r["submitted_at"] and r["decided_at"]:
            turnaround_hours.append((r["decided_at"] - r["submitted_at"]).total_seconds() / 3600)
        for reason in r["denial_reasons"] or []:
            reasons[reason.strip()[:120]] += 1
        pair = pairs.setdefault(
            (payer, drug, r["rollout_mode"]),
            {
                "payer": payer,
                "drug": drug,
                "mode": r["rollout_mode"],
                "cases": 0,
                "submitted": 0,
                "compared": 0,
                "field_sum": 0.0,
                "letter_sum": 0.0,
                "automatic": 0,
                "errors": 0,
                "denied": 0,
            },
        )
        pair["cases"] += 1
        if r["submitted_at"]:
            pair["submitted"] += 1
        agreement = r["agreement"] or {}
        if agreement.get("field_agreement") is not None:
            pair["compared"] += 1
            pair["field_sum"] += agreement["field_agreement"]
            pair["letter_sum"] += agreement.get("letter_similarity") or 0
        if r["submitted_automatically"]:
            pair["automatic"] += 1
            pair["errors"] += r["auto_review"] == "error"
        pair["denied"] += r["status"] in (CaseStatus.DENIED, CaseStatus.APPEALED)
    rollout = []
    for pair in sorted(pairs.values(), key=lambda p: (p["payer"], p["drug"], p["mode"])):
        compared, submitted = pair.pop("compared"), pair["submitted"]
        field_sum, letter_sum = pair.pop("field_sum"), pair.pop("letter_sum")
        pair["field_agreement"] = round(field_sum / compared, 3) if compared else None
        pair["letter_similarity"] = round(letter_sum / compared, 3) if compared else None
        pair["compared"] = compared
        # Error rate: automatic submissions judged wrong on review, plus denials, per submission.
        pair["error_rate"] = _rate(pair["errors"] + pair["denied"], submitted)
        rollout.append(pair)
    return {
        "total": len(rows),
        "by_status": [{"label": CaseStatus(k).label, "value": v} for k, v in sorted(by_status.items())],
        "approval_by_payer": [
            {"label": k, "value": _rate(v["approved"], v["decided"]), "n": v["decided"]}
            for k, v in sorted(payer_stats.items())
        ],
        "approval_by_drug": [
            {"label": k, "value": _rate(v["approved"], v["decided"]), "n": v["decided"]}
            for k, v in sorted(drug_stats.items())
        ],
        "median_turnaround_hours": round(median(turnaround_hours), 1) if turnaround_hours else None,
        "turnaround_n": len(turnaround_hours),
        "top_denial_reasons": [{"label": k, "value": v} for k, v in reasons.most_common(8)],
        "rollout": rollout,
        "open": qs.filter(status__in=OPEN_STATUSES).count(),
        "decided": qs.filter(status__in=DECIDED_STATUSES).count(),
    }
