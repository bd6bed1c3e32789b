"""Object-level access: which rows a user may see (HIPAA 45 CFR 164.502(b) minimum necessary;
164.312(a)(1) access control).

A user whose only role is prescriber sees only their own patients: requests and prescriptions
they wrote, patients they prescribe for or are the primary prescriber of. Staff roles
(pharmacist, technician, admin) and integrators see everything their role allows. Selectors
call these helpers so the HTML pages and the API apply the same rule."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .roles import PRESCRIBER, user_roles


def is_prescriber_only(user) -> bool:
    return user_roles(user) == {PRESCRIBER}


def scope_to_prescriber(qs: QuerySet, user, *, prescriber_path: str = "prescription__prescriber") -> QuerySet:
    """Limit ``qs`` to rows whose prescriber (reached by ``prescriber_path``) is linked to ``user``."""
    if is_prescriber_only(user):
        return qs.filter(**{f"{prescriber_path}__user": user})
    return qs


def scope_patients(qs: QuerySet, user) -> QuerySet:
    """Patients a prescriber-only user may see; everyone else: unchanged."""
    if not is_prescriber_only(user):
        return qs
    from .models import Prescription

    written = Prescription.objects.filter(prescriber__user=user).values("patient_id")
    return qs.filter(Q(pk__in=written) | Q(primary_prescriber__user=user))
