"""Object-level access: which rows a user may see (HIPAA 45 CFR 164.502(b) minimum necessary;
164.312(a)(1) access control).

A user whose only role is prescriber sees only their own patients: requests and prescriptions
they wrote, patients they prescribe for or are the primary prescriber of. Staff roles
(pharmacist, technician, admin) see everything their role allows.

An integrator account (a partner system, without a staff role) sees and touches only the records
of the pharmacies bound to it (``Pharmacy.integrator_users``): those pharmacies, their
prescriptions and fills, the patients with a prescription there or who prefer one of them, and
those patients' clinical rows. Workflow apps add their own bindings (priorauth: payers). Selectors
and API viewsets call these helpers so the HTML pages and the API apply the same rule."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .roles import INTEGRATOR, PRESCRIBER, STAFF, user_roles


def is_prescriber_only(user) -> bool:
    return user_roles(user) == {PRESCRIBER}


def is_partner(user) -> bool:
    """An integrator account without a staff role: scoped to what is bound to it."""
    roles = user_roles(user)
    return INTEGRATOR in roles and not (roles & STAFF)


def partner_pharmacies(user) -> QuerySet:
    from .models import Pharmacy

    return Pharmacy.objects.filter(integrator_users=user).values("pk")


def partner_patients(user) -> QuerySet:
    """Ids of the patients a partner may see (a subquery, not a list)."""
    from .models import Patient, Prescription

    bound = partner_pharmacies(user)
    with_rx = Prescription.objects.filter(pharmacy__in=bound).values("patient_id")
    return Patient.objects.filter(Q(pk__in=with_rx) | Q(preferred_pharmacy__in=bound)).values("pk")


def scope_to_pharmacy(qs: QuerySet, user, *, pharmacy_path: str = "pharmacy") -> QuerySet:
    """Limit ``qs`` for a partner to rows whose pharmacy (reached by ``pharmacy_path``; "pk" for
    pharmacies themselves) is bound to it; everyone else: unchanged."""
    if is_partner(user):
        return qs.filter(**{f"{pharmacy_path}__in": partner_pharmacies(user)})
    return qs


def scope_to_prescriber(qs: QuerySet, user, *, prescriber_path: str = "prescription__prescriber") -> QuerySet:
    """Limit ``qs`` to rows whose prescriber (reached by ``prescriber_path``) is linked to ``user``."""
    if is_prescriber_only(user):
        return qs.filter(**{f"{prescriber_path}__user": user})
    return qs


def scope_patients(qs: QuerySet, user, *, patient_path: str = "pk") -> QuerySet:
    """Patients (or rows reaching a patient by ``patient_path``) a prescriber-only user or a partner
    may see; everyone else: unchanged."""
    if is_partner(user):
        return qs.filter(**{f"{patient_path}__in": partner_patients(user)})
    if not is_prescriber_only(user):
        return qs
    from .models import Patient, Prescription

    written = Prescription.objects.filter(prescriber__user=user).values("patient_id")
    visible = Patient.objects.filter(Q(pk__in=written) | Q(primary_prescriber__user=user)).values("pk")
    return qs.filter(**{f"{patient_path}__in": visible})
