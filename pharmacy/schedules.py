"""Recurring tasks, declared in code (each app registers its ``tasks.SCHEDULES``) and synced to django-q2."""
from __future__ import annotations

from . import registry


def declared_schedules() -> list[dict]:
    return registry.schedules()


def sync_schedules() -> list[str]:
    from django_q.models import Schedule

    names = []
    for spec in declared_schedules():
        spec = dict(spec)
        name = spec.pop("name")
        Schedule.objects.update_or_create(name=name, defaults=spec)
        names.append(name)
    Schedule.objects.filter(name__startswith="rxhub:").exclude(name__in=names).delete()
    return names
