"""Reconciliation pages (thin: read through selectors, change through services)."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pharmacy.access import mark_phi_access
from pharmacy.pagination import bounded_page, capped_count, capped_counts, shown
from pharmacy.queue_filters import status_chips, toggles
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, role_required
from pharmacy.selectors import allergy_flags_for
from pharmacy.web import run_action

from . import selectors, services
from .choices import OPEN_TASK_STATUSES, InboundStatus, TaskStatus
from .models import InboundMessage, PatientMatchItem, ReconciliationTask

STAFF = (PHARMACIST, TECHNICIAN, ADMIN)


_run = run_action


@role_required(*STAFF)
def queue(request):
    show = request.GET.get("show", "open")
    query = request.GET.copy()
    if show == "completed" and "status" not in query:  # the old link keeps working
        query.setlist("status", [TaskStatus.COMPLETED])
    query.pop("show", None)
    # Ordered and paged without joining discrepancies; the page's 50 tasks get their counts.
    base = selectors.task_queue_filtered(selectors.task_rows(user=request.user), query)
    chosen = [s for s in query.getlist("status") if s in TaskStatus.values]
    tasks = base.filter(status__in=chosen or OPEN_TASK_STATUSES)
    counts = capped_counts(base, field_name="status", values=TaskStatus.values)
    page = bounded_page(tasks, request.GET.get("page"),
                        rows=lambda ids: selectors.with_discrepancy_counts(tasks.filter(pk__in=ids)))
    mark_phi_access(request, [t.patient_id for t in page.object_list], "reconciliation queue")
    page_query = query.copy()
    page_query.pop("page", None)
    return render(request, "reconciliation/task_queue.html", {
        "page": page, "show": "completed" if chosen == [TaskStatus.COMPLETED] else "open",
        "query": page_query.urlencode(),
        "chips": status_chips(query, counts, choices=TaskStatus.choices, chip_statuses=TaskStatus.values,
                              default_statuses=OPEN_TASK_STATUSES),
        "toggles": toggles(query, QUEUE_TOGGLES), "search": query.get("q", ""), "chosen_statuses": chosen,
        "match_count": shown(capped_count(selectors.match_item_queue(user=request.user))),
        "failed_count": shown(capped_count(InboundMessage.objects.filter(status=InboundStatus.FAILED))),
    })


QUEUE_TOGGLES = (("high", "1", "High priority"), ("discharge", "1", "Discharges"))


@role_required(*STAFF)
def task_detail(request, pk: int):
    try:
        task = selectors.task_detail(task_id=pk, user=request.user)
    except ReconciliationTask.DoesNotExist as exc:
        raise Http404("No such reconciliation task.") from exc
    discrepancies = list(task.discrepancies.all())
    flags = allergy_flags_for([d.prescription_id for d in discrepancies if d.prescription_id])
    for d in discrepancies:
        d.flags = flags.get(d.prescription_id, [])
    mark_phi_access(request, [task.patient_id], f"reconciliation task {task.pk}")
    # Catalog search for an EHR drug name the catalog did not recognise (choose it, then accept).
    drug_for, drug_q = request.GET.get("for", ""), request.GET.get("drug_q", "").strip()
    if drug_for.isdigit() and drug_q:
        from pharmacy.selectors import drugs_matching

        for d in discrepancies:
            if str(d.pk) == drug_for:
                d.drug_results = drugs_matching(drug_q)
    return render(request, "reconciliation/task_detail.html", {
        "task": task, "discrepancies": discrepancies, "flags": flags, "drug_for": drug_for, "drug_q": drug_q,
        "can_decide": bool({PHARMACIST, ADMIN} & _roles(request.user)),
    })


def _roles(user):
    from pharmacy.roles import user_roles

    return user_roles(user)


def _back_to_task(request, discrepancy_id: int):
    from .models import Discrepancy

    task_id = Discrepancy.objects.filter(pk=discrepancy_id).values_list("task_id", flat=True).first()
    if task_id is None:
        raise Http404("No such discrepancy.")
    return redirect("reconciliation:task-detail", pk=task_id)


@role_required(PHARMACIST, ADMIN)
@require_POST
def accept(request, pk: int):
    note = request.POST.get("note", "")[:2000]
    drug = request.POST.get("drug", "")
    _run(request, lambda: services.discrepancy_accept(discrepancy_id=pk, actor=request.user, note=note,
                                                      drug_id=int(drug) if drug.isdigit() else None),
         "Accepted and applied.")
    return _back_to_task(request, pk)


@role_required(PHARMACIST, ADMIN)
@require_POST
def reject(request, pk: int):
    note = request.POST.get("note", "")[:2000]
    _run(request, lambda: services.discrepancy_reject(discrepancy_id=pk, actor=request.user, note=note),
         "Rejected; nothing was changed.")
    return _back_to_task(request, pk)


@role_required(*STAFF)
def inbound_list(request):
    status = request.GET.get("status", "")
    qs = selectors.inbound_list(user=request.user)
    if status in InboundStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    mark_phi_access(request, [m.patient_id for m in page.object_list], "inbound messages")
    return render(request, "reconciliation/inbound_list.html",
                  {"page": page, "status": status, "statuses": InboundStatus.choices})


@role_required(*STAFF)
def inbound_detail(request, pk: int):
    message = InboundMessage.objects.select_related("patient", "duplicate_of").filter(pk=pk).first()
    if message is None:
        raise Http404("No such message.")
    mark_phi_access(request, [message.patient_id], f"inbound message {message.pk}")
    return render(request, "reconciliation/inbound_detail.html", {"message": message,
                                                                   "tasks": list(message.tasks.all())})


@role_required(*STAFF)
@require_POST
def inbound_retry(request, pk: int):
    _run(request, lambda: services.inbound_retry(message_id=pk, actor=request.user), "Retried.")
    return redirect("reconciliation:inbound-detail", pk=pk)


@role_required(*STAFF)
def match_list(request):
    """Patients to match: each message's patient beside the candidates (score, what differs), a search
    by name and birth date, and "create a patient from this message". Nobody types an internal id."""
    from pharmacy.models import Patient
    from pharmacy.selectors import parse_birth_date, patient_pick

    items = list(selectors.match_item_queue(user=request.user)[:100])
    ids = {c.get("patient_id") for i in items for c in i.candidates}
    patients = Patient.objects.in_bulk([pk for pk in ids if pk])
    search_item = request.GET.get("item", "")
    search_text, birth_text = request.GET.get("q", "").strip(), request.GET.get("birth", "").strip()
    birth = parse_birth_date(birth_text)
    found = []
    if search_item.isdigit() and (search_text or birth):
        found = patient_pick(user=request.user, text=search_text, birth_date=birth)
    shown = set(patients) | {p.pk for p in found}
    rows = []
    for item in items:
        offered = [{**c, "patient": patients.get(c.get("patient_id")),
                    "differs": differing_fields(item.patient_data, patients.get(c.get("patient_id")))}
                   for c in item.candidates if patients.get(c.get("patient_id"))]
        results = []
        if str(item.pk) == search_item:
            results = [{"patient": p, "differs": differing_fields(item.patient_data, p)} for p in found
                       if p.pk not in {c["patient_id"] for c in offered}]
        rows.append({"item": item, "candidates": offered, "results": results,
                     "searched": str(item.pk) == search_item})
    mark_phi_access(request, shown, "patient match queue")
    return render(request, "reconciliation/match_list.html", {
        "rows": rows, "search_text": search_text, "birth_text": birth_text,
        "bad_birth": bool(birth_text) and birth is None})


def differing_fields(data: dict | None, patient) -> list[str]:
    """What the message says that the pharmacy's record does not (shown next to each candidate)."""
    from reconciliation.matching import _fold

    if patient is None:
        return []
    data = data or {}
    out = []
    if data.get("family") and _fold(data["family"]) != _fold(patient.last_name):
        out.append(f"family name {data['family']} ≠ {patient.last_name}")
    if data.get("given") and _fold(str(data["given"]).split(" ")[0]) != _fold(patient.first_name.split(" ")[0]):
        out.append(f"given name {data['given']} ≠ {patient.first_name}")
    if data.get("birth_date") and str(data["birth_date"])[:10] != patient.birth_date.isoformat():
        out.append(f"birth date {data['birth_date']} ≠ {patient.birth_date.isoformat()}")
    if data.get("sex") and patient.sex not in ("", "U") and str(data["sex"])[:1].upper() != patient.sex:
        out.append(f"sex {data['sex']} ≠ {patient.sex}")
    return out


@role_required(*STAFF)
@require_POST
def match_resolve(request, pk: int):
    if not PatientMatchItem.objects.filter(pk=pk).exists():
        raise Http404("No such match item.")
    try:
        patient_id = int(request.POST.get("patient") or "")
    except ValueError:
        messages.error(request, "Choose a patient.")
        return redirect("reconciliation:match-list")
    _run(request, lambda: services.match_item_resolve(item_id=pk, patient_id=patient_id, actor=request.user),
         "Patient matched; the message was processed.")
    return redirect("reconciliation:match-list")


@role_required(*STAFF)
@require_POST
def match_create_patient(request, pk: int):
    if not PatientMatchItem.objects.filter(pk=pk).exists():
        raise Http404("No such match item.")
    _run(request, lambda: services.match_item_create_patient(item_id=pk, actor=request.user),
         "New patient created from the message; the message was processed.")
    return redirect("reconciliation:match-list")


@role_required(*STAFF)
@require_POST
def pull(request, pk: int):
    _run(request, lambda: services.pull_ehr_record_start(patient_id=pk, actor=request.user),
         "EHR pull started; its result shows in the reconciliation panel when it is done.")
    return redirect("patient-detail", pk=pk)


@role_required(PHARMACIST, ADMIN)
@require_POST
def link_consent(request, pk: int):
    from .models import EhrLink

    link = EhrLink.objects.filter(pk=pk).first()
    if link is None:
        raise Http404("No such EHR link.")
    consent = request.POST.get("consent") == "1"
    _run(request, lambda: services.ehr_link_set_consent(link_id=pk, consent=consent, actor=request.user),
         "Consent to exchange recorded." if consent else "Consent to exchange withdrawn.")
    return redirect("patient-detail", pk=link.patient_id)
