"""django-q2 tasks for refills (thin: call services)."""
from __future__ import annotations

from datetime import date

from django.utils import timezone
from django_q.tasks import async_task

from .detection import SQL_CHUNK, detect_refills, evaluate_opened, id_ranges, pending_evaluation

EVALUATE_BATCH = 200  # requests per evaluation task (each ~10-50 ms: a task stays well under the timeout)

SCHEDULES = [
    {"name": "rxhub:detect-refills", "func": "refills.tasks.detect_refills_daily", "schedule_type": "D",
     "repeats": -1},
    # Reminders after PRESCRIBER_REMINDER_HOURS and escalation of expired links (refills/links.py).
    {"name": "rxhub:prescriber-links", "func": "refills.tasks.process_prescriber_links", "schedule_type": "I",
     "minutes": 15, "repeats": -1},
    # Requests waiting for the prescriber's new (EPCS) prescription longer than
    # NEW_PRESCRIPTION_WAIT_DAYS return to the queue with a reminder (refills/new_prescriptions.py).
    {"name": "rxhub:new-prescription-overdue", "func": "refills.tasks.return_overdue_new_prescriptions",
     "schedule_type": "H", "repeats": -1},
]


def detect_refills_daily() -> str:
    """The daily schedule: detection spread over the task workers, one task per id range."""
    tasks = detect_refills_fanout()
    return f"detection chunks enqueued: {len(tasks)}"


def detect_refills_fanout(*, today: date | None = None, lookahead: int | None = None, chunk: int | None = None,
                          evaluate: bool = True, group: str | None = None) -> list[str]:
    """Enqueue ``detect_refills_chunk`` once per prescription id range (refills.detection.id_ranges):
    any number of task workers, on any machine sharing the broker, take the ranges in parallel.
    Returns the task ids. Each chunk is idempotent, so a chunk delivered twice, or re-run after a
    worker died, opens nothing twice."""
    today = today or timezone.localdate()
    group = group or f"detect-refills-{today.isoformat()}"
    return [async_task("refills.tasks.detect_refills_chunk", low, high, today.isoformat(), lookahead, evaluate,
                       group=group, task_name=f"{group}-{low}")
            for low, high in id_ranges(chunk or SQL_CHUNK)]


def detect_refills_chunk(low: int, high: int, today: str | None = None, lookahead: int | None = None,
                         evaluate: bool = True) -> dict:
    """Detection over prescriptions with ids in [low, high); then, with ``evaluate``, every detection
    request of that range still waiting (received) — the ones opened now and any a previous attempt
    opened but did not get to evaluate — is enqueued for eligibility + protocol in batches of
    EVALUATE_BATCH (a 50,000-id chunk opens ~10,000 requests: one task would pass the cluster's
    timeout). Safe to run twice."""
    result = detect_refills(today=date.fromisoformat(today) if today else None, lookahead=lookahead,
                            id_range=(low, high))
    batches = 0
    if evaluate:
        pending = pending_evaluation(low, high)
        for start in range(0, len(pending), EVALUATE_BATCH):
            async_task("refills.tasks.evaluate_refill_requests", pending[start:start + EVALUATE_BATCH],
                       task_name=f"evaluate-refills-{low}-{start}")
            batches += 1
    return {"low": low, "high": high, "examined": result.examined, "due": result.due, "opened": result.opened,
            "evaluation_batches": batches}


def evaluate_refill_requests(request_ids: list[int]) -> dict:
    """Eligibility + protocol for these requests; one already evaluated is counted, not redone."""
    return evaluate_opened(request_ids)


def process_prescriber_links() -> str:
    from .links import prescriber_links_process

    return str(prescriber_links_process())


def return_overdue_new_prescriptions() -> str:
    from .new_prescriptions import refill_requests_new_prescription_overdue

    return str(refill_requests_new_prescription_overdue())
