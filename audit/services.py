"""Writes of the audit app: the PHI access log and the explicit retention purge."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pharmacy.actors import Actor
from pharmacy.errors import DomainError

from .events import record_event
from .history import history_models
from .immutability import may_purge, retention_purge
from .models import PhiAccess

# HIPAA keeps required documentation six years (45 CFR 164.316(b)(2)(i)); default retention of
# history and the access log follows it. Configure with RXHUB["HISTORY_RETENTION_DAYS"].
DEFAULT_RETENTION_DAYS = 6 * 365


def retention_days() -> int:
    return int(settings.RXHUB.get("HISTORY_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


def phi_access_record(*, user, entries: list[tuple[int, str]], path: str, method: str, ip: str | None) -> int:
    """Write one request's PHI access marks in one INSERT (duplicates within a request merged)."""
    seen, rows, now = set(), [], timezone.now()
    username = user.get_username()[:150]
    for patient_id, what in entries:
        if (patient_id, what) in seen:
            continue
        seen.add((patient_id, what))
        rows.append(
            PhiAccess(
                at=now,
                user=user,
                username=username,
                patient_id=patient_id,
                what=what,
                path=path[:300],
                method=method[:8],
                ip_address=ip,
            )
        )
    PhiAccess.objects.bulk_create(rows)
    return len(rows)


class RetentionNotReached(DomainError):
    code = "retention_not_reached"


class PurgeNeedsOwnerRole(DomainError):
    code = "purge_needs_owner_role"


def history_purge(*, before: date, actor: Actor, dry_run: bool = False) -> dict[str, int]:
    """Delete history rows and PHI access entries older than ``before`` (explicit, audited).

    Refuses a date inside the retention period. The audit chain itself is never purged: removing
    its first links would make the rest unverifiable."""
    limit = timezone.localdate() - timedelta(days=retention_days())
    if before > limit:
        raise RetentionNotReached(
            f"Refusing to purge rows newer than the retention period: the latest allowed "
            f"date is {limit.isoformat()} ({retention_days()} days)."
        )
    if not dry_run and not may_purge(transaction.get_connection()):
        raise PurgeNeedsOwnerRole(
            "purge_history deletes through the append-only trigger only as the role that owns the history "
            "and audit tables (the one that runs migrations); run it with that role's DATABASE_URL."
        )
    cutoff = timezone.make_aware(datetime.combine(before, time.min))
    with transaction.atomic():
        counts: dict[str, int] = {}
        targets = [(hm, hm.objects.filter(history_date__lt=cutoff)) for _model, hm in history_models()]
        targets.append((PhiAccess, PhiAccess.objects.filter(at__lt=cutoff)))
        with retention_purge():
            for model, qs in targets:
                if dry_run:
                    counts[model._meta.label] = qs.count()
                else:
                    counts[model._meta.label] = qs._raw_delete(
                        qs.db
                    )  # no per-row load; guarded by the context
        total = sum(counts.values())
        if not dry_run:
            record_event(
                kind="history.purged",
                actor=actor,
                summary=f"Purged {total} rows older than {before}",
                data={
                    "before": before.isoformat(),
                    "retention_days": retention_days(),
                    "counts": {k: v for k, v in counts.items() if v},
                },
            )
    return counts
