"""The dashboard's queue cards. Each workflow app offers ``selectors.queue_summary(user=…)``."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module

from django.utils import timezone

QUEUE_APPS = ("refills", "priorauth", "reconciliation")


@dataclass(frozen=True)
class QueueSummary:
    key: str
    title: str
    url: str
    count: int
    oldest_at: datetime | None
    urgent: int = 0
    detail: str = ""

    @property
    def oldest_age(self):
        return timezone.now() - self.oldest_at if self.oldest_at else None


def queue_summaries(*, user) -> list[QueueSummary]:
    summaries = []
    for app in QUEUE_APPS:
        try:
            selectors = import_module(f"{app}.selectors")
        except ModuleNotFoundError:
            continue
        provider = getattr(selectors, "queue_summary", None)
        if provider is not None:
            summaries.append(provider(user=user))
    return summaries
