"""Signal receivers (thin): they call services inside the saving transaction."""
from __future__ import annotations

from pharmacy.actors import system_actor


def _actor(instance):
    user = getattr(instance, "_history_user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else system_actor(
        "system:reconciliation")


def prescription_created(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from .services import prescription_allergy_check

        prescription_allergy_check(prescription=instance, actor=_actor(instance))


def fill_recorded(sender, instance, created, raw=False, **kwargs):
    """Shared with the EHR only when a person recorded the fill (issue 7: outbound after a
    pharmacist's action only) — not fills written by a system actor or without an actor."""
    from pharmacy.actors import is_system_user

    user = getattr(instance, "_history_user", None)
    if created and not raw and user is not None and not is_system_user(user):
        from .services import dispense_share

        dispense_share(fill=instance, actor=user)
