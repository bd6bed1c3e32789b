"""Base pages: dashboard, patient search, patient page."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import registry, selectors
from .access import mark_phi_access
from .dashboard import queue_summaries
from .models import Patient
from .roles import ADMIN, INTEGRATOR, PHARMACIST, PRESCRIBER, TECHNICIAN, role_required, user_roles

STAFF_AND_PRESCRIBERS = (PHARMACIST, TECHNICIAN, ADMIN, PRESCRIBER)


class LoginView(auth_views.LoginView):
    """After logging in, each person lands where their work is: an integrator on its API tokens."""

    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        from .error_views import home_for

        return home_for(self.request.user)[0]


def dashboard(request):
    if request.user.is_authenticated and user_roles(request.user) == {INTEGRATOR}:
        return redirect("api-tokens")
    return _dashboard(request)


@role_required(*STAFF_AND_PRESCRIBERS)
def _dashboard(request):
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
    prescriptions = list(patient.prescriptions.all())
    actions = prescription_actions(prescriptions=prescriptions, user=request.user)
    rows = [{"rx": rx, "actions": actions.get(rx.pk, [])} for rx in prescriptions]
    return render(request, "pharmacy/patient_detail.html",
                  {"patient": patient, "fills": fills, "prescription_rows": rows,
                   "panels": patient_panels(patient=patient, user=request.user)})


def prescription_actions(*, prescriptions, user) -> dict[int, list[dict]]:
    """The buttons each app offers per prescription (its registered ``prescription_actions``)."""
    out: dict[int, list[dict]] = {}
    for provider in registry.prescription_action_providers():
        for pk, items in provider(prescriptions=prescriptions, user=user).items():
            out.setdefault(pk, []).extend(items)
    return out


def patient_panels(*, patient, user) -> list[dict]:
    """Sections each app adds to the patient page (its registered ``patient_panels``): dicts with
    ``title``, ``template`` and ``context``; each costs a fixed number of queries."""
    return [panel for provider in registry.patient_panel_providers() for panel in provider(patient=patient, user=user)]


@never_cache
@role_required(INTEGRATOR, ADMIN)
def api_tokens(request):
    """The account's own API token: see it, create (replace) it, revoke it. Nobody else's."""
    from rest_framework.authtoken.models import Token

    from . import services

    new_key = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            revoked = services.api_token_revoke(actor=request.user)
            messages.success(request, "Token revoked; requests using it are now refused." if revoked
                             else "There was no token to revoke.")
            return redirect("api-tokens")
        new_key = services.api_token_create(actor=request.user).key
        messages.success(request, "New token created. Copy it now: it is shown in full only this once.")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "pharmacy/api_tokens.html", {"token": token, "new_key": new_key})


dashboard.allowed_roles = frozenset({*STAFF_AND_PRESCRIBERS, INTEGRATOR})  # integrators are sent to their tokens


# --- outbound messages (issue 11 item 9): pending, sent, failed and dead, with Retry ---------------

@role_required(PHARMACIST, ADMIN)
def outbox(request):
    from .choices import OutboxStatus

    status = request.GET.get("status", "")
    if status not in OutboxStatus.values:
        status = ""
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.outbox_list(status=status, search=search), 50).get_page(request.GET.get("page"))
    counts = selectors.outbox_status_counts()
    chips = [{"label": "All", "count": sum(counts.values()), "url": "?", "current": not status}]
    chips += [{"label": label, "count": counts.get(value, 0), "url": f"?status={value}", "current": status == value}
              for value, label in OutboxStatus.choices]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "pharmacy/outbox.html", {"page": page, "chips": chips, "status": status,
                                                    "search": search, "query": query.urlencode()})


@role_required(PHARMACIST, ADMIN)
@require_POST
def outbox_retry(request, pk: int):
    from .messaging.outbox import outbox_resend
    from .models import OutboxMessage
    from .web import run_action

    try:
        message = OutboxMessage.objects.only("message_id", "status").get(pk=pk)
    except OutboxMessage.DoesNotExist as exc:
        raise Http404("No such outbound message.") from exc
    run_action(request, lambda: outbox_resend(outbox_id=pk, actor=request.user),
               f"Message {message.message_id} put back in line for delivery.")
    target = request.POST.get("back", "")
    return redirect(f"{reverse('outbox')}?{target}" if target else "outbox")
