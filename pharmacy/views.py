"""Base pages: dashboard, patient search, patient page."""
from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from . import selectors
from .access import mark_phi_access
from .dashboard import QUEUE_APPS, queue_summaries
from .models import Patient
from .roles import ADMIN, PHARMACIST, PRESCRIBER, TECHNICIAN, role_required

STAFF_AND_PRESCRIBERS = (PHARMACIST, TECHNICIAN, ADMIN, PRESCRIBER)


@role_required(*STAFF_AND_PRESCRIBERS)
def dashboard(request):
    return render(request, "pharmacy/dashboard.html", {"queues": queue_summaries(user=request.user)})


@role_required(*STAFF_AND_PRESCRIBERS)
def patient_search(request):
    query = request.GET.get("q", "").strip()
    patients = selectors.patient_list(user=request.user, search=query) if query else Patient.objects.none()
    page = Paginator(patients, 25).get_page(request.GET.get("page"))
    mark_phi_access(request, [p.pk for p in page.object_list], "patient search results")
    return render(request, "pharmacy/patient_search.html", {"query": query, "page": page})


@role_required(*STAFF_AND_PRESCRIBERS)
def patient_detail(request, pk: int):
    try:
        patient = selectors.patient_detail(patient_id=pk, user=request.user)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient.") from exc
    fills = selectors.patient_fills(patient_id=pk)
    mark_phi_access(request, [patient.pk], "patient page")
    return render(request, "pharmacy/patient_detail.html",
                  {"patient": patient, "fills": fills, "panels": patient_panels(patient=patient, user=request.user)})


def patient_panels(*, patient, user) -> list[dict]:
    """Sections each workflow app adds to the patient page (``<app>.selectors.patient_panels``):
    dicts with ``title``, ``template`` and ``context``; each costs a fixed number of queries."""
    panels = []
    for app in (*QUEUE_APPS, "audit"):
        if find_spec(f"{app}.selectors") is None:
            continue
        provider = getattr(import_module(f"{app}.selectors"), "patient_panels", None)
        if provider is not None:
            panels.extend(provider(patient=patient, user=user))
    return panels
