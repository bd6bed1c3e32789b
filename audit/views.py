"""Audit pages (admins): PHI access log, audit events, exports; the history timeline of any
record (staff). Thin: filter → selector → render; exports stream CSV and are audit events."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from pharmacy.access import mark_phi_access
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, role_required

from . import exports, selectors
from .events import record_event
from .filters import AuditEventFilter, PhiAccessFilter
from .forms import ExportForm


def _page(request, qs, size=50):
    page = Paginator(qs, size).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


@role_required(ADMIN)
def access_log(request):
    filterset = PhiAccessFilter(request.GET, queryset=selectors.phi_access_list())
    page, query = _page(request, filterset.qs)
    return render(request, "audit/phi_access_list.html", {"filter": filterset, "page": page, "query": query})


@role_required(ADMIN)
def event_list(request):
    filterset = AuditEventFilter(request.GET, queryset=selectors.audit_event_list())
    page, query = _page(request, filterset.qs)
    return render(request, "audit/audit_event_list.html", {"filter": filterset, "page": page, "query": query})


@role_required(ADMIN)
def export_page(request):
    return render(request, "audit/exports.html", {"form": ExportForm()})


EXPORTS = {
    "audit-events": ("audit events", exports.audit_event_rows, True),
    "history": ("history", exports.history_rows, True),
    "controlled-substances": ("controlled-substance decisions", exports.controlled_substance_rows, False),
}


@role_required(ADMIN)
def export_csv(request, name: str):
    if name not in EXPORTS:
        raise Http404("No such export.")
    title, rows, per_patient = EXPORTS[name]
    form = ExportForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), content_type="text/plain"
        )
    start, end, patient_id = (
        form.cleaned_data["start"],
        form.cleaned_data["end"],
        form.cleaned_data.get("patient"),
    )
    kwargs = {"start": start, "end": end}
    if per_patient:
        kwargs["patient_id"] = patient_id
    elif patient_id:
        return HttpResponseBadRequest("This export is not per patient.", content_type="text/plain")
    # The export is itself a security event (and, per patient, a PHI access).
    record_event(
        kind=f"export.{name}",
        actor=request.user,
        patient_id=patient_id,
        request=request,
        summary=f"Exported {title} {start}..{end}" + (f" for patient {patient_id}" if patient_id else ""),
        data={"start": start.isoformat(), "end": end.isoformat(), "patient_id": patient_id},
    )
    if patient_id:
        mark_phi_access(request, [patient_id], f"export of {title}")
    filename = (
        f"{name}_{start:%Y%m%d}-{end:%Y%m%d}" + (f"_patient{patient_id}" if patient_id else "") + ".csv"
    )
    response = StreamingHttpResponse(
        exports.csv_lines(rows(**kwargs)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@role_required(PHARMACIST, TECHNICIAN, ADMIN)
def timeline(request, app_label: str, model_name: str, pk: int):
    try:
        obj = selectors.timeline_object(app_label=app_label, model_name=model_name, pk=pk)
    except (LookupError, ValueError, ObjectDoesNotExist) as exc:
        raise Http404("No such record.") from exc
    patient_id = selectors.object_patient_id(obj)
    if patient_id:
        mark_phi_access(request, [patient_id], f"history of {obj._meta.verbose_name} {obj.pk}")
    return render(
        request,
        "audit/timeline.html",
        {"object": obj, "model_name": obj._meta.verbose_name, "now": timezone.now()},
    )
