"""Signal receivers of the core (thin): they call services inside the saving transaction."""
from __future__ import annotations

from .actors import system_actor
from .services import prescription_allergy_check


def _actor(instance):
    user = getattr(instance, "_history_user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else system_actor(
        "system:reconciliation")


def prescription_created(sender, instance, created, raw=False, **kwargs):
    """The allergy check runs for every new prescription however it is created (UI, API, admin,
    reconciliation, inbound NCPDP)."""
    if created and not raw:
        prescription_allergy_check(prescription=instance, actor=_actor(instance))
