"""django-q2 tasks for refills (thin: call services)."""
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
    from .detection import detect_refills, evaluate_opened

    result = detect_refills()
    outcome = evaluate_opened(result.request_ids)
    return f"opened {result.opened}; {outcome}"


def process_prescriber_links() -> str:
    from .links import prescriber_links_process

    return str(prescriber_links_process())


def return_overdue_new_prescriptions() -> str:
    from .new_prescriptions import refill_requests_new_prescription_overdue

    return str(refill_requests_new_prescription_overdue())
