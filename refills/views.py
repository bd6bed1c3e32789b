"""Pharmacist refill queue and request page (thin: forms → services → messages)."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pharmacy import pagination
from pharmacy.access import mark_phi_access
from pharmacy.errors import DomainError
from pharmacy.pagination import bounded_page, shown
from pharmacy.roles import ADMIN, PHARMACIST, PRESCRIBER, TECHNICIAN, role_required
from pharmacy.rules.facts import fill_records
from pharmacy.rules.supply import pdc
from pharmacy.selectors import attach_allergy_flags
from pharmacy.web import run_action

from . import selectors, services
from .choices import IntakeStatus, RefillStatus
from .forms import ApproveForm, DenyForm, ForwardForm, IntakeAssignForm, IntakeDismissForm
from .models import IntakeMessage, RefillRequest

QUEUE_ROLES = (PHARMACIST, TECHNICIAN, ADMIN, PRESCRIBER)


@role_required(*QUEUE_ROLES)
def queue(request):
    filterset = selectors.refill_queue_filtered(user=request.user, query=request.GET, request=request)
    page = bounded_page(filterset.qs, request.GET.get("page"))
    mark_phi_access(request, [r.patient_id for r in page.object_list], "refill queue")
    attach_allergy_flags(page.object_list)  # a new prescription conflicting with an allergy shows everywhere
    query = request.GET.copy()
    query.pop("page", None)
    counts = selectors.refill_status_counts(user=request.user, query=request.GET, request=request)
    return render(request, "refills/refill_request_queue.html", {
        "filter": filterset, "page": page, "query": query.urlencode(), "today": timezone.localdate(),
        "chips": status_chips(request.GET, counts), "toggles": toggles(request.GET),
        "search": request.GET.get("q", ""), "kind": request.GET.get("kind", ""),
        "chosen_statuses": request.GET.getlist("status"),
        "agreement": selectors.shadow_agreement(),
        "triage_waiting": IntakeMessage.objects.filter(status=IntakeStatus.TRIAGE).count(),
    })


CHIP_STATUSES = (RefillStatus.NEEDS_REVIEW, RefillStatus.AWAITING_PRESCRIBER, RefillStatus.EXPIRED,
                 RefillStatus.AWAITING_NEW_PRESCRIPTION, RefillStatus.APPROVED, RefillStatus.SENT_TO_PHARMACY,
                 RefillStatus.DENIED, RefillStatus.AUTO_APPROVED)
TOGGLES = (("urgent", "true", "Urgent"), ("mine", "1", "Claimed by me"), ("unclaimed", "1", "Unclaimed"),
           ("routine", "1", "Routine refills"))


def _with(query, **changes) -> str:
    data = query.copy()
    data.pop("page", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, list):
            data.setlist(key, value)
        else:
            data[key] = value
    return data.urlencode()


def status_chips(query, counts: dict[str, int]) -> list[dict]:
    """Status chips: "Open" (the default set), each status, "All" — each with its count and URL."""
    chosen = set(query.getlist("status"))

    def total(statuses) -> str:  # counts are capped per status (refill_status_counts): "1,000+"
        ns = [counts.get(s, 0) for s in statuses]
        exact = all(n <= pagination.COUNT_CAP for n in ns)
        return f"{sum(ns):,}" if exact else f"{sum(min(n, pagination.COUNT_CAP) for n in ns):,}+"

    chips = [{"label": "Open", "count": total(selectors.DEFAULT_QUEUE_STATUSES), "url": "?" + _with(query, status=None),
              "current": not chosen}]
    for status in CHIP_STATUSES:
        chips.append({"label": RefillStatus(status).label, "count": shown(counts.get(status, 0)),
                      "url": "?" + _with(query, status=[status]), "current": chosen == {status}})
    chips.append({"label": "All", "count": total(counts),
                  "url": "?" + _with(query, status=[s for s, _ in RefillStatus.choices]),
                  "current": len(chosen) == len(RefillStatus.choices)})
    return chips


def toggles(query) -> list[dict]:
    return [{"name": name, "value": value, "label": label, "on": bool(query.get(name))}
            for name, value, label in TOGGLES]


@role_required(*QUEUE_ROLES)
def request_detail(request, pk: int):
    try:
        req = selectors.refill_request_detail(request_id=pk, user=request.user)
    except RefillRequest.DoesNotExist as exc:
        raise Http404("No such refill request.") from exc
    fills = list(req.prescription.fills.all())
    today = timezone.localdate()
    adherence = pdc(fill_records(fills), start=today - timedelta(days=180), end=today) if fills else None
    mark_phi_access(request, [req.patient_id], f"refill request {req.pk}")
    attach_allergy_flags([req])
    approve_initial = {}
    if req.protocol_mode == "assist" and req.protocol_suggestion == "approve":
        approve_initial["note"] = "Protocol suggestion accepted"
    queue_query = request.GET.get("queue", "")
    done = None
    if request.GET.get("done", "").isdigit():
        done = RefillRequest.objects.select_related("patient", "prescription__drug").filter(
            pk=int(request.GET["done"])).first()
    # Who may authorize what (pharmacy/rules/authority.py) and the findings that block as of today:
    # the page offers only what the service would accept.
    from .authority import authority_for, offered_actions
    from .facts import current_eligibility

    offered = offered_actions(req, request.user, today=today) if req.is_open else ()
    authority = authority_for(req, req.prescription, request.user, today=today)
    blocking = current_eligibility(req.prescription, kind=authority.kind, today=today).blocking_reasons \
        if req.is_open else ()
    overridable = bool(blocking) and all(r.overridable for r in blocking)
    dur = selectors.refill_request_dur(req)
    return render(request, "refills/refill_request_detail.html", {
        **dur,
        "req": req, "fills": fills[:12], "pdc": adherence, "today": today,
        "offered": offered, "authority": authority, "blocking": blocking, "overridable": overridable,
        "approve_form": ApproveForm(initial=approve_initial), "deny_form": DenyForm(), "forward_form": ForwardForm(),
        "labs": list(req.patient.lab_results.all()[:10]),
        "warnings": decision_warnings(req) + dur["quantity_warnings"], "queue_query": queue_query, "done": done,
        "queue_url": reverse("refills:queue") + (f"?{queue_query}" if queue_query else ""),
    })


def decision_warnings(req) -> list[str]:
    """What a pharmacist confirms with one more key before approving (shown on the request)."""
    warnings = [finding.get("message", "") for finding in (req.eligibility or []) if finding.get("message")]
    warnings += [f"Allergy: {flag}" for flag in getattr(req, "allergy_flags", None) or []]
    if req.prescription.dea_schedule != "none":
        warnings.append(f"Schedule {req.prescription.dea_schedule} controlled substance.")
    if req.kind == "renewal":
        warnings.append("A renewal is a new authorization, not a refill.")
    return warnings


def _run(request, pk, action, success):
    run_action(request, action, success)
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return _detail_redirect(pk, request.POST.get("queue", ""))


def _detail_redirect(pk, queue_query: str, done: int | None = None):
    params = QueryDict(mutable=True)
    if queue_query:
        params["queue"] = queue_query
    if done:
        params["done"] = str(done)
    url = reverse("refills:request-detail", args=[pk])
    return redirect(f"{url}?{params.urlencode()}" if params else url)


def _decide(request, pk, action, verb: str):
    """A decision from the request page; on success the next open request of the same filtered queue
    opens by itself (with a note saying what was decided and a link back)."""
    queue_query = request.POST.get("queue", "")
    try:
        req = action()
    except (DomainError, ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else (str(exc) or "Not allowed.")
        messages.error(request, text)
        return _detail_redirect(pk, queue_query)
    messages.success(request, f"{verb}: {req.patient.last_name}, {req.patient.first_name} — {req.prescription.drug}.")
    following = selectors.refill_next_open(user=request.user, query=QueryDict(queue_query), after_pk=pk,
                                           request=request)
    if following is None:
        messages.info(request, "That was the last open request in this view.")
        return redirect(reverse("refills:queue") + (f"?{queue_query}" if queue_query else ""))
    return _detail_redirect(following.pk, queue_query, done=pk)


@role_required(PHARMACIST, TECHNICIAN, ADMIN)
@require_POST
def claim(request, pk: int):
    if request.POST.get("release"):
        return _run(
            request, pk, lambda: services.refill_request_unclaim(request_id=pk, actor=request.user), "Released."
        )
    return _run(request, pk, lambda: services.refill_request_claim(request_id=pk, actor=request.user),
                "Claimed — it is yours to work.")


@role_required(PHARMACIST, ADMIN, PRESCRIBER)  # the service decides who may (pharmacy/rules/authority.py)
@require_POST
def approve(request, pk: int):
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()))
        return _detail_redirect(pk, request.POST.get("queue", ""))
    d = form.cleaned_data
    return _decide(request, pk, lambda: services.refill_request_approve(
        request_id=pk, actor=request.user, note=d["note"], quantity=d["quantity"], days_supply=d["days_supply"],
        refills=d["refills"], override_reason=d["override_reason"]),
        "Approved; the authorization is on its way to the pharmacy")


@role_required(PHARMACIST, ADMIN, PRESCRIBER)
@require_POST
def deny(request, pk: int):
    form = DenyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A reason is required to deny a request.")
        return _detail_redirect(pk, request.POST.get("queue", ""))
    return _decide(request, pk, lambda: services.refill_request_deny(
        request_id=pk, actor=request.user, reason=form.cleaned_data["reason"],
        reason_code=form.cleaned_data["reason_code"]), "Denied")


@role_required(PRESCRIBER)
@require_POST
def new_prescription(request, pk: int):
    """The request's prescriber, logged in: "I will send a new prescription from my EPCS-certified
    e-prescribing system" (refills/new_prescriptions.py)."""
    from .new_prescriptions import refill_request_await_new_prescription

    return _run(request, pk, lambda: refill_request_await_new_prescription(
        request_id=pk, actor=request.user, note=request.POST.get("note", "")[:500]),
        "Recorded: you will send a new prescription from your EPCS-certified system.")


@role_required(PHARMACIST, ADMIN)
@require_POST
def forward(request, pk: int):
    form = ForwardForm(request.POST)
    form.is_valid()
    return _decide(request, pk, lambda: services.refill_request_forward(
        request_id=pk, actor=request.user, note=form.cleaned_data.get("note", "")), "Forwarded to the prescriber")


@role_required(PHARMACIST, ADMIN)
@require_POST
def bulk_approve(request):
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    suggested = RefillRequest.objects.filter(pk__in=ids, status=RefillStatus.NEEDS_REVIEW,
                                             protocol_suggestion="approve").values_list("pk", flat=True)
    done, failed = 0, []
    for pk in suggested:
        try:
            services.refill_request_approve(
                request_id=pk, actor=request.user, note="Bulk approval of protocol suggestion"
            )
            done += 1
        except (DomainError, ValidationError, PermissionDenied) as exc:
            failed.append(f"#{pk}: {exc}")
    skipped = len(ids) - len(suggested)
    messages.success(
        request, f"{done} approved." + (f" {skipped} skipped (not suggested by the protocol)." if skipped else "")
    )
    for text in failed:
        messages.error(request, text)
    return redirect("refills:queue")


# --- patient messages that need a person (issue 4 part 10) ------------------------------------------

TRIAGE_ROLES = (PHARMACIST, TECHNICIAN, ADMIN)


@role_required(*TRIAGE_ROLES)
def triage(request):
    """Patient and pet-owner messages the intake could not match on its own, oldest first."""
    from pharmacy.selectors import parse_birth_date, patient_pick

    from .intake import intake_triage_list

    page = Paginator(intake_triage_list(), 25).get_page(request.GET.get("page"))
    shown = {m.matched_patient_id for m in page.object_list}
    shown |= {p["id"] for m in page.object_list for p in (m.match_detail or {}).get("patients", [])}
    # "Find the patient": a name and/or birth date typed for one message; the patients found are
    # listed with their active prescriptions (prescription number and drug) to choose from.
    find = request.GET.get("find", "")
    find_text, birth_text = request.GET.get("q", "").strip(), request.GET.get("birth", "").strip()
    found = []
    if find.isdigit() and (find_text or birth_text):
        found = patient_pick(user=request.user, text=find_text, birth_date=parse_birth_date(birth_text),
                             with_prescriptions=True)
    shown |= {p.pk for p in found}
    mark_phi_access(request, shown, "intake triage")
    return render(request, "refills/triage.html", {
        "page": page, "dismiss_form": IntakeDismissForm(), "find": find, "find_text": find_text,
        "birth_text": birth_text, "found": found})


def _triage_run(request, action, success):
    try:
        result = action()
    except (DomainError, ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else (str(exc) or "Not allowed.")
        messages.error(request, text)
        return redirect("refills:triage")
    messages.success(request, success(result))
    return redirect("refills:triage")


@role_required(*TRIAGE_ROLES)
@require_POST
def triage_assign(request, pk: int):
    from .intake import intake_assign

    form = IntakeAssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a prescription (find the patient first if none is offered).")
        return redirect("refills:triage")
    return _triage_run(request, lambda: intake_assign(intake_id=pk, prescription_id=form.prescription_id(),
                                                      actor=request.user, note=form.cleaned_data["note"]),
                       lambda req: f"Message {pk} assigned: request {req.pk} ({req.get_status_display().lower()}).")


@role_required(*TRIAGE_ROLES)
@require_POST
def triage_dismiss(request, pk: int):
    from .intake import intake_dismiss

    form = IntakeDismissForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the message is dismissed.")
        return redirect("refills:triage")
    return _triage_run(request, lambda: intake_dismiss(intake_id=pk, actor=request.user,
                                                       reason=form.cleaned_data["reason"]),
                       lambda msg: f"Message {pk} dismissed.")
