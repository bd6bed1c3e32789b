"""Styled error pages (403, 404, 410, 500, 503) with the reason and a way back.

The templates (templates/<status>.html, extending templates/errors/base.html) use no session, user or
database of their own, so the 500 and 503 pages render even when the database does not answer; the
403/404 handlers add who is signed in when that can be read cheaply. Refused requests are logged as
one line by pharmacy.log_redaction.OneLineRefusalsFilter (no traceback for a 4xx)."""
from __future__ import annotations

from django.http import HttpResponse
from django.template import loader
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme


def _safe_reverse(name: str, default: str = "/") -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return default


def _user(request):
    try:
        user = getattr(request, "user", None)
        return user if user is not None and user.is_authenticated else None
    except Exception:  # noqa: BLE001 — the session store (database) may be the thing that failed
        return None


def home_for(user) -> tuple[str, str]:
    """Where a person's way back leads: integrators to their API tokens, staff to the dashboard."""
    from .roles import INTEGRATOR, user_roles

    if user is None:
        return _safe_reverse("login"), "Log in"
    roles = user_roles(user)
    if roles == {INTEGRATOR}:
        return _safe_reverse("api-tokens"), "Go to your API tokens"
    if not roles:
        return _safe_reverse("login"), "Log in"
    return _safe_reverse("dashboard"), "Go to the dashboard"


def _back_url(request) -> str:
    if request is None:
        return ""
    referer = request.META.get("HTTP_REFERER", "")
    try:
        host = request.get_host()
    except Exception:  # noqa: BLE001 — a disallowed host still gets a page
        return ""
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={host}) and not referer.endswith(
            request.get_full_path()):
        return referer
    return ""


def render_error(request, status: int, *, reason: str = "", title: str = "", retry_after: int | None = None,
                 with_user: bool = True, **extra) -> HttpResponse:
    """The styled page for ``status`` (403/404/410/500/503) with the reason and the ways back."""
    user = _user(request) if with_user and request is not None else None
    home_url, home_label = home_for(user) if with_user else ("/", "Go to the start page")
    context = {"status": status, "reason": reason, "title": title, "back_url": _back_url(request),
               "home_url": home_url, "home_label": home_label, "retry_after": retry_after, **extra}
    if user is not None:
        from .roles import user_roles

        context["signed_in_as"] = user.get_username()
        context["roles"] = sorted(user_roles(user))
    response = HttpResponse(loader.get_template(f"{status}.html").render(context), status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def service_unavailable(request=None, *, reason: str = "", retry_after: int = 30) -> HttpResponse:
    """503 with Retry-After; touches no database (for outages)."""
    return render_error(request, 503, reason=reason, retry_after=retry_after, with_user=False)


def permission_denied(request, exception=None):
    return render_error(request, 403, reason=str(exception or ""))


def page_not_found(request, exception=None):
    reason = ""
    message = exception.args[0] if exception is not None and exception.args else ""
    if isinstance(message, str) and message and "Resolver404" not in message and not message.startswith("{"):
        reason = message  # e.g. "No such refill request." from a view; not the resolver's internals
    return render_error(request, 404, reason=reason, request_path=request.path)


def server_error(request=None):
    return render_error(request, 500, with_user=False)

