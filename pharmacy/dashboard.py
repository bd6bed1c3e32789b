"""The dashboard's queue cards: each workflow app registers its ``dashboard_card`` (pharmacy/registry.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from . import registry


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
    return [card(user=user) for card in registry.dashboard_cards()]
