"""Mark what patient data a request shows, so the PHI access log (audit app) can record it.

Views and API views call ``mark_phi_access(request, patient_ids, what)``; the audit middleware
writes the log entries after the response. Marking is cheap (no query)."""
from __future__ import annotations

from collections.abc import Iterable


def mark_phi_access(request, patient_ids: Iterable[int | None], what: str) -> None:
    django_request = getattr(request, "_request", request)  # DRF Request wraps HttpRequest
    entries = getattr(django_request, "phi_access", None)
    if entries is None:
        entries = []
        django_request.phi_access = entries
    for patient_id in patient_ids:
        if patient_id is not None:
            entries.append((int(patient_id), what[:200]))
