"""Who acted and why: every state-changing service records a user or a named system actor.

A system actor (``system:refill-protocol``, ``system:inbound`` …) is backed by an inactive user
with an unusable password, so history rows and audit events always point at someone — never at
nobody — and an auditor can filter by it like by any person.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from django.contrib.auth import get_user_model
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model

SYSTEM_ACTORS: dict[str, str] = {
    "system:refill-detection": "Refill detection engine",
    "system:refill-protocol": "Refill protocol (auto-approval)",
    "system:prescriber-link": "Prescriber approval link",
    "system:refill-followup": "Refill follow-up (new prescriptions overdue, reminders)",
    "system:outbox": "Outbound message delivery",
    "system:inbound": "Inbound message processing",
    "system:ncpdp-inbound": "Inbound NCPDP SCRIPT messages from pharmacies",
    "system:pa-status": "Prior authorization status tracking",
    "system:pa-rollout": "Prior authorization automatic submission",
    "system:reconciliation": "Medication reconciliation",
    "system:patient-intake": "Patient request intake",
    "system:demo-seed": "Demo data loader",
    "system:maintenance": "Maintenance command",
}


@dataclass(frozen=True)
class SystemActor:
    name: str

    def __post_init__(self) -> None:
        if self.name not in SYSTEM_ACTORS:
            raise ValueError(f"Unknown system actor {self.name!r}; add it to SYSTEM_ACTORS.")

    @property
    def label(self) -> str:
        return SYSTEM_ACTORS[self.name]

    def __str__(self) -> str:
        return self.name


Actor = Union["AbstractBaseUser", SystemActor]

_user_cache: dict[str, int] = {}


def system_actor(name: str) -> SystemActor:
    return SystemActor(name)


def actor_user(actor: Actor):
    """The user row that history and audit rows reference for this actor."""
    if isinstance(actor, SystemActor):
        User = get_user_model()
        pk = _user_cache.get(actor.name)
        if pk is not None:
            # Check the name too: a cached pk may belong to someone else after a rollback.
            user = User.objects.filter(pk=pk, username=actor.name).first()
            if user is not None:
                return user
        user, created = User.objects.get_or_create(
            username=actor.name,
            defaults={"is_active": False, "first_name": actor.label[:150]},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        _user_cache[actor.name] = user.pk
        return user
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise ValueError("A state change needs an authenticated user or a system actor.")
    return actor


def actor_label(actor: Actor) -> str:
    if isinstance(actor, SystemActor):
        return actor.name
    return actor.get_username()


def is_system_user(user) -> bool:
    return bool(user) and user.username in SYSTEM_ACTORS


def stamp(instance: Model, *, actor: Actor, reason: str) -> Model:
    """Attach the actor and reason that django-simple-history writes on the next save."""
    instance._history_user = actor_user(actor)
    instance._change_reason = reason
    return instance


def save_with_history(instance: Model, *, actor: Actor, reason: str, update_fields: Iterable[str] | None = None):
    stamp(instance, actor=actor, reason=reason)
    if update_fields is not None:
        fields = set(update_fields)
        if hasattr(instance, "updated_at"):
            fields.add("updated_at")
        instance.save(update_fields=sorted(fields))
    else:
        instance.save()
    return instance


def bulk_create_recorded(model, objs: list, *, actor: Actor, reason: str, batch_size: int = 1000, **kwargs):
    """bulk_create that still writes history rows (plain bulk_create records nothing)."""
    return bulk_create_with_history(
        objs, model, batch_size=batch_size, default_user=actor_user(actor), default_change_reason=reason, **kwargs
    )


def bulk_update_recorded(model, objs: list, fields: list[str], *, actor: Actor, reason: str, batch_size: int = 1000):
    return bulk_update_with_history(
        objs, model, fields, batch_size=batch_size, default_user=actor_user(actor), default_change_reason=reason
    )
