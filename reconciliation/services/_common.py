"""System actors of the reconciliation services and the per-ingest cache of their user rows."""
from __future__ import annotations

from contextvars import ContextVar

from pharmacy.actors import SystemActor, actor_user, system_actor

INBOUND = system_actor("system:inbound")


RECONCILIATION = system_actor("system:reconciliation")


_system_users: ContextVar[dict | None] = ContextVar("reconciliation_system_users", default=None)


def _sys(actor: SystemActor):
    """The user row behind a system actor, looked up once per ingest (one query saved per write)."""
    cache = _system_users.get()
    if cache is None:
        return actor
    if actor.name not in cache:
        cache[actor.name] = actor_user(actor)
    return cache[actor.name]
