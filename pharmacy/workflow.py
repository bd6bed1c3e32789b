"""The one lock / check-transition / move / record-why helper every workflow app uses (issue 12).

A workflow row (refill request, PA case, reconciliation task, inbound message …) changes status
only through ``move``: the transition is checked against the app's table (``choices.py``), the
status is set and the row saved with the acting user (or system actor) and the reason, so its
history says who and why. ``locked`` fetches the row ``select_for_update`` inside the caller's
``transaction.atomic()`` (docs/design.md "Locks on decisions").

No network I/O here or in any caller while the lock is held (docs/design.md "No network under a
lock").
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from django.db.models import Model

from .actors import Actor, save_with_history
from .errors import DomainError, TransitionNotAllowed

M = TypeVar("M", bound=Model)
# Either the app's can_transition(current, target) or a {current: {targets}} table.
Transitions = Callable[[str, str], bool] | Mapping[str, set[str] | frozenset[str]]


def locked(model: type[M], pk: int, *, label: str | None = None, queryset=None) -> M:
    """The row, locked for this transaction; a missing row is a DomainError ``not_found``."""
    rows = queryset if queryset is not None else model.objects.all()
    try:
        return rows.select_for_update().get(pk=pk)
    except model.DoesNotExist as exc:
        name = label or model._meta.verbose_name
        raise DomainError(f"{name[:1].upper()}{name[1:]} {pk} does not exist.", code="not_found") from exc


def allowed(transitions: Transitions, current: str, target: str) -> bool:
    if callable(transitions):
        return transitions(current, target)
    return target in transitions.get(current, ())


def check_transition(transitions: Transitions, current: str, target: str, *, label: str) -> None:
    """Raise TransitionNotAllowed (HTTP 409, code transition_not_allowed) unless the table allows it."""
    if not allowed(transitions, current, target):
        raise TransitionNotAllowed(model=label, current=current, target=target)


def move(obj: Model, target: str, *, transitions: Transitions, label: str, actor: Actor, reason: str,
         fields: tuple[str, ...] | list[str] = (), status_field: str = "status", max_reason: int | None = None) -> None:
    """Check the transition, set the status and save it (with ``fields``) with history: who and why."""
    check_transition(transitions, getattr(obj, status_field), target, label=label)
    setattr(obj, status_field, target)
    save_with_history(obj, actor=actor, reason=reason[:max_reason] if max_reason else reason,
                      update_fields=[status_field, *fields])
