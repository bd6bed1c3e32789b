"""Signal receivers (thin): they call services inside the saving transaction."""
from __future__ import annotations

from pharmacy.actors import is_system_user

from .services import dispense_share


def fill_recorded(sender, instance, created, raw=False, **kwargs):
    """Shared with the EHR only when a person recorded the fill (issue 7: outbound after a
    pharmacist's action only) — not fills written by a system actor or without an actor."""
    user = getattr(instance, "_history_user", None)
    if created and not raw and user is not None and not is_system_user(user):
        dispense_share(fill=instance, actor=user)
