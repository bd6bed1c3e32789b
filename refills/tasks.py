"""django-q2 tasks for refills (thin: call services)."""
SCHEDULES = [
    {"name": "rxhub:detect-refills", "func": "refills.tasks.detect_refills_daily", "schedule_type": "D",
     "repeats": -1},
]


def detect_refills_daily() -> str:
    from .detection import detect_refills, evaluate_opened

    result = detect_refills()
    outcome = evaluate_opened(result.request_ids)
    return f"opened {result.opened}; {outcome}"
