"""Write the PHI access log for each request (HIPAA 45 CFR 164.312(b) audit controls).

Views and API views only mark what they show (``pharmacy.access.mark_phi_access``: no query);
this middleware writes all of one request's marks with a single INSERT once the view has
produced its response, before the response leaves the server. Nothing is held in memory across
requests, so nothing can be lost on shutdown. If the write fails, the response is not sent
(an error is better than an unlogged disclosure)."""

from __future__ import annotations

from .events import client_ip
from .services import phi_access_record


class PhiAccessMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        entries = getattr(request, "phi_access", None)
        user = getattr(request, "user", None)
        if entries and user is not None and user.is_authenticated and response.status_code < 400:
            phi_access_record(
                user=user,
                entries=entries,
                path=request.get_full_path(),
                method=request.method,
                ip=client_ip(request),
            )
            request.phi_access = []
        return response
