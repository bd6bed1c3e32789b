"""PA queue, case review page, automatic-submission list and analytics (thin: forms → services)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from pharmacy.access import mark_phi_access
from pharmacy.errors import DomainError
from pharmacy.pagination import bounded_page, capped_counts
from pharmacy.queue_filters import status_chips, toggles
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, role_required
from pharmacy.selectors import attach_allergy_flags
from pharmacy.web import run_action

from . import selectors, services
from .charts import bars
from .choices import OPEN_STATUSES, CaseStatus
from .filters import PACaseFilter
from .forms import AppealForm, AttachmentForm, CancelForm, LetterForm, OpenForm, ReviewForm
from .models import PACase

STAFF = (PHARMACIST, TECHNICIAN, ADMIN)
DECIDE = (PHARMACIST, ADMIN)


def _run(request, pk, action, success):
    run_action(request, action, success)
    return redirect("priorauth:case-detail", pk=pk)


@role_required(*STAFF)
def queue(request):
    data = request.GET.copy()
    if "status" not in data:
        data.setlist("status", list(OPEN_STATUSES))
    filterset = PACaseFilter(data, queryset=selectors.pa_case_list(user=request.user))
    page = bounded_page(filterset.qs, request.GET.get("page"))
    now = timezone.now()
    rows = [(c, selectors.clock(c, now)) for c in page.object_list]
    mark_phi_access(request, [c.patient_id for c, _ in rows], "PA queue")
    attach_allergy_flags(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    # Status chips with counts kept cheap (one query, each status counted up to the cap).
    counts_data = data.copy()
    counts_data.setlist("status", [])
    counts_qs = PACaseFilter(counts_data, queryset=selectors.pa_case_list(user=request.user)).qs
    counts = capped_counts(counts_qs, field_name="status", values=[s for s, _ in CaseStatus.choices])
    return render(
        request,
        "priorauth/queue.html",
        {
            "filter": filterset,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "chips": status_chips(request.GET, counts, choices=CaseStatus.choices,
                                  chip_statuses=CHIP_STATUSES, default_statuses=OPEN_STATUSES),
            "toggles": toggles(request.GET, TOGGLES),
            "search": request.GET.get("q", ""),
            "chosen_statuses": [s for s in request.GET.getlist("status") if s],
        },
    )


CHIP_STATUSES = (CaseStatus.READY_FOR_REVIEW, CaseStatus.GATHERING, CaseStatus.SUBMITTED, CaseStatus.PENDED,
                 CaseStatus.DENIED, CaseStatus.APPEALED, CaseStatus.APPROVED)
TOGGLES = (("expedited", "true", "Expedited"), ("overdue", "true", "Overdue"))


@role_required(*STAFF)
def automatic(request):
    qs = (
        selectors.pa_case_list(user=request.user)
        .filter(submitted_automatically=True)
        .order_by("-submitted_at")
    )
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    mark_phi_access(request, [c.patient_id for c in page.object_list], "PA automatic submissions")
    return render(request, "priorauth/automatic.html", {"page": page, "review_form": ReviewForm()})


@role_required(*STAFF)
def case_detail(request, pk: int):
    try:
        case = selectors.pa_case_detail(case_id=pk, user=request.user)
    except PACase.DoesNotExist as exc:
        raise Http404("No such PA case.") from exc
    mark_phi_access(request, [case.patient_id], f"PA case {case.pk}")
    evidence_ids = {e["id"]: e for e in case.evidence}
    return render(
        request,
        "priorauth/case_detail.html",
        {
            "case": case,
            "clock": selectors.clock(case),
            "letter_form": LetterForm(initial={"letter": case.letter}),
            "appeal_form": AppealForm(initial={"letter": case.appeal_letter}),
            "cancel_form": CancelForm(),
            "attachment_form": AttachmentForm(),
            "review_form": ReviewForm(),
            "field_rows": sorted(case.fields.items()) if case.fields else [],
            "questions": [(q, case.answers.get(q["id"], "")) for q in case.questions],
            "evidence_ids": evidence_ids,
        },
    )


def _posted_fields(request) -> dict:
    return {k[len("field__") :]: v for k, v in request.POST.items() if k.startswith("field__")}


@role_required(*STAFF)
@require_POST
def save(request, pk: int):
    """Save the letter and fields; with ``action=submit`` a pharmacist also approves the submission."""
    form = LetterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()))
        return redirect("priorauth:case-detail", pk=pk)
    letter, fields = form.cleaned_data["letter"], _posted_fields(request)
    if request.POST.get("action") == "submit":
        return _run(
            request,
            pk,
            lambda: services.pa_case_submit(
                case_id=pk, actor=request.user, letter=letter, fields=fields or None
            ),
            "Approved and submitted to the payer.",
        )
    return _run(
        request,
        pk,
        lambda: services.pa_case_edit(case_id=pk, actor=request.user, letter=letter, fields=fields or None),
        "Saved.",
    )


@role_required(*DECIDE)
@require_POST
def answer(request, pk: int):
    answers = {k[len("answer__") :]: v for k, v in request.POST.items() if k.startswith("answer__")}
    return _run(
        request,
        pk,
        lambda: services.pa_case_answer(case_id=pk, actor=request.user, answers=answers),
        "Answers sent to the payer.",
    )


@role_required(*DECIDE)
@require_POST
def appeal(request, pk: int):
    form = AppealForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An appeal needs a letter.")
        return redirect("priorauth:case-detail", pk=pk)
    return _run(
        request,
        pk,
        lambda: services.pa_case_appeal(case_id=pk, actor=request.user, letter=form.cleaned_data["letter"]),
        "Appeal submitted.",
    )


@role_required(*STAFF)
@require_POST
def cancel(request, pk: int):
    form = CancelForm(request.POST)
    form.is_valid()
    return _run(
        request,
        pk,
        lambda: services.pa_case_cancel(
            case_id=pk, actor=request.user, reason=form.cleaned_data.get("reason", "")
        ),
        "Cancelled.",
    )


@role_required(*DECIDE)
@require_POST
def expedite(request, pk: int):
    expedited = request.POST.get("expedited") == "1"
    return _run(
        request,
        pk,
        lambda: services.pa_case_set_expedited(
            case_id=pk, actor=request.user, expedited=expedited, reason=request.POST.get("reason", "")[:300]
        ),
        "Expedited review requested." if expedited else "Standard review.",
    )


@role_required(*STAFF)
@require_POST
def acknowledge(request, pk: int):
    return _run(
        request, pk, lambda: services.pa_case_acknowledge(case_id=pk, actor=request.user), "Marked as seen."
    )


@role_required(*STAFF)
@require_POST
def refresh(request, pk: int):
    return _run(
        request,
        pk,
        lambda: services.pa_case_refresh(case_id=pk, actor=request.user),
        "Evidence gathered again.",
    )


@role_required(*STAFF)
@require_POST
def attach(request, pk: int):
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to attach.")
        return redirect("priorauth:case-detail", pk=pk)
    upload = form.cleaned_data["file"]
    if upload.size > services.MAX_ATTACHMENT_BYTES:
        messages.error(request, "Attachments are limited to 5 MB.")
        return redirect("priorauth:case-detail", pk=pk)
    return _run(
        request,
        pk,
        lambda: services.pa_attachment_add(
            case_id=pk,
            actor=request.user,
            file_name=upload.name,
            mime_type=upload.content_type or "",
            data=upload.read(),
        ),
        f"Attached {upload.name}.",
    )


@role_required(*DECIDE)
@require_POST
def review(request, pk: int):
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose correct or error.")
        return redirect("priorauth:automatic")
    _run(
        request,
        pk,
        lambda: services.pa_case_review_auto(
            case_id=pk,
            actor=request.user,
            verdict=form.cleaned_data["verdict"],
            note=form.cleaned_data["note"],
        ),
        "Review recorded.",
    )
    return redirect("priorauth:automatic")


@role_required(*STAFF)
@require_POST
def open_case(request):
    form = OpenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Open a PA case from the patient's prescription list.")
        return redirect("priorauth:queue")
    try:
        case = services.pa_case_open(prescription_id=form.cleaned_data["prescription"], actor=request.user)
    except (DomainError, ValidationError, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return redirect("priorauth:queue")
    except Exception as exc:  # noqa: BLE001 — unknown prescription id
        from pharmacy.models import Prescription

        if isinstance(exc, Prescription.DoesNotExist):
            messages.error(request, "No such prescription.")
            return redirect("priorauth:queue")
        raise
    messages.success(request, f"PA case {case.pk} opened.")
    return redirect("priorauth:case-detail", pk=case.pk)


@role_required(*STAFF)
def analytics(request):
    data = selectors.analytics()
    charts = [
        ("Cases by status", bars(data["by_status"]), "by-status"),
        ("Approval rate by payer", bars(data["approval_by_payer"], percent=True), "approval-payer"),
        ("Approval rate by drug", bars(data["approval_by_drug"], percent=True), "approval-drug"),
        ("Top denial reasons", bars(data["top_denial_reasons"]), "denials"),
    ]
    return render(request, "priorauth/analytics.html", {"data": data, "charts": charts})
