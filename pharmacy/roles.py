"""Roles and what each may do. Groups are created by a data migration; permissions are synced
after every migrate from ROLE_PERMISSIONS so later apps' permissions join without new migrations.

Clinical approvals (refill decisions, PA submission, reconciliation acceptance) need the
pharmacist role; a technician prepares but never approves.
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from . import registry

PHARMACIST = "pharmacist"
TECHNICIAN = "technician"
PRESCRIBER = "prescriber"
ADMIN = "admin"
INTEGRATOR = "integrator"
ALL_ROLES = (PHARMACIST, TECHNICIAN, PRESCRIBER, ADMIN, INTEGRATOR)

STAFF = frozenset({PHARMACIST, TECHNICIAN, ADMIN})
CLINICAL = frozenset({PHARMACIST, ADMIN})
EVERYONE = frozenset(ALL_ROLES)

_CORE_MODELS = ["patient", "prescriber", "pharmacy", "drug", "prescription", "fill", "allergy",
                "diagnosis", "coverage", "labresult", "encounter", "facility"]


def _perms(app: str, models: list[str], actions: tuple[str, ...]) -> set[str]:
    return {f"{app}.{action}_{model}" for model in models for action in actions}


# Model permissions each group gets (Django admin and the API's role checks read the same table).
# Allergy flags are raised by the allergy check only: staff see them, an admin may clear one.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    PHARMACIST: _perms("pharmacy", _CORE_MODELS, ("view", "add", "change"))
    | {"pharmacy.view_outboxmessage", "pharmacy.view_allergyflag",
       "pharmacy.view_collaborativepracticeagreement"},
    TECHNICIAN: _perms("pharmacy", _CORE_MODELS, ("view",)) | {"pharmacy.view_allergyflag"}
    | _perms("pharmacy", ["patient", "fill", "allergy", "diagnosis", "coverage", "labresult", "encounter"],
             ("add", "change")),
    PRESCRIBER: _perms("pharmacy", ["patient", "prescription", "fill", "allergy", "diagnosis", "labresult",
                                    "encounter", "drug"], ("view",)),
    # The admin role administers in Django admin without being a superuser (issue 11 item 3): users
    # and their roles, core records, outbound messages, the task schedules, login lockouts, API tokens.
    ADMIN: _perms("pharmacy", _CORE_MODELS, ("view", "add", "change", "delete"))
    | _perms("pharmacy", ["outboxmessage", "allergyflag"], ("view", "change"))
    # Payloads refused before parsing are kept for the record: an admin reads them, nobody edits them.
    | _perms("pharmacy", ["refusedpayload"], ("view",))
    # Collaborative practice agreements are recorded by an admin (issue 13), kept with history.
    | _perms("pharmacy", ["collaborativepracticeagreement"], ("view", "add", "change"))
    | _perms("auth", ["user", "group"], ("view", "add", "change"))
    | _perms("authtoken", ["token", "tokenproxy"], ("view", "add", "delete"))
    | _perms("django_q", ["schedule"], ("view", "add", "change"))
    | _perms("django_q", ["success", "failure", "ormq"], ("view",))
    | _perms("axes", ["accessattempt"], ("view", "delete"))  # deleting an attempt unlocks the account
    | _perms("axes", ["accesslog", "accessfailurelog"], ("view",)),
    INTEGRATOR: _perms("pharmacy", _CORE_MODELS, ("view", "add", "change")),
}


def all_role_permissions() -> dict[str, set[str]]:
    """The core table plus the ``role_permissions`` each app registered (pharmacy/registry.py)."""
    merged = {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()}
    for table in registry.role_permissions():
        for role, perms in table.items():
            merged.setdefault(role, set()).update(perms)
    return merged


def user_roles(user) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_rx_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            names.add(ADMIN)
        cached = frozenset(names & set(ALL_ROLES))
        user._rx_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def require_role(user, *roles: str, action: str = "do this") -> None:
    """Raise PermissionDenied unless the user holds one of the roles (system actors pass)."""
    from .actors import SystemActor

    if isinstance(user, SystemActor):
        return
    if not has_role(user, *roles):
        raise PermissionDenied(f"Only {' or '.join(roles)} may {action}.")


def refusal_reason(roles) -> str:
    """What a refused person reads on the 403 page."""
    names = sorted(roles)
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"This page is for the {listed} role{'s' if len(names) > 1 else ''}; your account does not hold it."


def role_required(*roles: str):
    """Decorator for HTML views; records the roles on the view for the security matrix test."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied(refusal_reason(roles))
            return view(request, *args, **kwargs)

        wrapped.allowed_roles = frozenset(roles)
        return wrapped

    return decorator


def sync_role_permissions(*, verbosity: int = 0) -> None:
    from django.contrib.auth.models import Group, Permission

    for role, perms in all_role_permissions().items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.set(wanted)
