"""Public pages behind a prescriber's signed link (no login: the token is the credential).

Thin: the link services in refills/links.py validate, lock and decide; these pages show the
request with its context and turn a LinkError into a clear page with 404 / 403 / 410."""
from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from audit.events import client_ip, record_event
from pharmacy.errors import DomainError
from pharmacy.rules.facts import fill_records
from pharmacy.rules.supply import pdc

from .authority import authority_for, change_of, offered_actions, quantity_warnings
from .eligibility import ALLERGY_CONFLICT
from .facts import current_eligibility
from .forms import LinkAnswerForm
from .links import LINK_ACTOR, LinkError, prescriber_link_answer, prescriber_link_open
from .selectors import refill_request_dur

DONE_SESSION_KEY = "prescriber_link_done"


def _private(response):
    # The page holds PHI behind a credential in its URL: keep it out of caches, referrers and indexes.
    # same-origin, not no-referrer: with no-referrer a browser posts the form with "Origin: null",
    # which the CSRF check refuses; other sites still never see the URL.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _refused(request, exc: LinkError):
    return _private(render(request, "refills/prescriber_link_error.html", {"error": exc},
                           status=exc.status_code))


@never_cache
@require_http_methods(["GET", "POST"])
def prescriber_link(request, token: str):
    try:
        link = prescriber_link_open(token=token)
    except LinkError as exc:
        return _refused(request, exc)
    req = link.request
    form = LinkAnswerForm(request.POST or None, prescription=req.prescription,
                          requested_refills=req.pharmacy_requested_refills)
    change_warnings = []
    if request.method == "POST" and form.is_valid() and form.cleaned_data["decision"] == "approve_with_changes":
        # Issue 13 item 4: a quantity that does not match the sig is shown before the approval is
        # recorded; the prescriber sends the same changes again to confirm them.
        d = form.cleaned_data
        change_warnings = quantity_warnings(req, req.prescription, change_of(d["quantity"], d["days_supply"],
                                                                              d["refills"]))
        if change_warnings and request.POST.get("confirm_quantity") != "1":
            form.add_error(None, "Nothing was recorded yet: " + " ".join(change_warnings)
                           + " Send the same changes again to approve them as they are.")
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            req = prescriber_link_answer(
                token=token, decision=d["decision"], note=d["note"], quantity=d["quantity"],
                days_supply=d["days_supply"], refills=d["refills"], reason=d["reason"],
                reason_code=d["reason_code"] or "AF", ip=client_ip(request), override_reason=d["override_reason"])
        except LinkError as exc:
            return _refused(request, exc)
        except ValidationError as exc:  # e.g. more refills than the schedule allows; nothing was recorded
            for name, errors in (exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}).items():
                form.add_error(name if name in form.fields else None, errors)
        except DomainError as exc:  # e.g. a refill with none left to authorize; nothing was recorded
            form.add_error(None, str(exc))
        else:
            request.session[DONE_SESSION_KEY] = {"status": req.get_status_display(), "decision": d["decision"]}
            return redirect("refills:prescriber-link-done")
    elif request.method == "GET":
        record_event(kind="refill.link_viewed", actor=LINK_ACTOR, subject=req, patient_id=req.patient_id,
                     summary=f"{link.prescriber} opened the approval link",
                     data={"link_id": link.pk, "prescriber_id": link.prescriber_id}, request=request)
    # No mark_phi_access here: the PHI log stores the path, and this path holds a live credential.
    # The refill.link_viewed audit event above records who saw which patient instead.
    fills = list(req.prescription.fills.all())
    today = timezone.localdate()
    adherence = pdc(fill_records(fills), start=today - timedelta(days=180), end=today) if fills else None
    actor = LINK_ACTOR
    offered = offered_actions(req, actor, today=today)  # controlled renewal: new prescription (EPCS) or deny
    authority = authority_for(req, req.prescription, actor, today=today)
    # An active allergy conflict blocks approval; the prescriber may approve over it with a reason.
    allergy = [r for r in current_eligibility(req.prescription, kind=authority.kind, today=today).blocking_reasons
               if r.code == ALLERGY_CONFLICT]
    return _private(render(request, "refills/prescriber_link.html", {
        **refill_request_dur(req), "change_warnings": change_warnings, "allergy_conflicts": allergy,
        "link": link, "req": req, "rx": req.prescription, "patient": req.patient, "fills": fills[:8],
        "pdc": adherence, "form": form, "today": today, "offered": offered,
        "authority": authority,
    }))  # a form with errors answers 200: Django logs every 4xx with its path, and this one still works


@never_cache
def prescriber_link_done(request):
    outcome = request.session.pop(DONE_SESSION_KEY, None)
    return _private(render(request, "refills/prescriber_link_done.html", {"outcome": outcome}))
