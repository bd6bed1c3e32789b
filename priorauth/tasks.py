"""django-q2 tasks for prior authorization (thin: call services). Synced by sync_schedules."""

SCHEDULES = [
    # Poll open submissions through each payer's adapter (payers with a status_url configured).
    {
        "name": "rxhub:pa-poll",
        "func": "priorauth.tasks.poll_open_submissions",
        "schedule_type": "I",
        "minutes": 30,
        "repeats": -1,
    },
    # Expire lapsed approvals; open renewals for approvals expiring within the window (default 30 days).
    {"name": "rxhub:pa-expiry", "func": "priorauth.tasks.expiry_sweep", "schedule_type": "D", "repeats": -1},
]


def poll_open_submissions() -> str:
    from .services import pa_poll_open

    counts = pa_poll_open()
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def expiry_sweep() -> str:
    from .services import pa_expiry_sweep

    counts = pa_expiry_sweep()
    return ", ".join(f"{v} {k}" for k, v in counts.items())
