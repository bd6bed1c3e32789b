"""Recurring tasks of the core (synced by `manage.py sync_schedules`)."""
SCHEDULES = [
    {"name": "rxhub:outbox-retry", "func": "pharmacy.messaging.tasks.deliver_due_messages",
     "schedule_type": "I", "minutes": 1, "repeats": -1},
    # Inbound messages left `received` for over a minute, and failed ones whose backoff is over
    # (pharmacy/inbound.py; every registered pipeline).
    {"name": "rxhub:inbound-sweep", "func": "pharmacy.tasks.inbound_sweep", "schedule_type": "I", "minutes": 1,
     "repeats": -1},
]


def inbound_sweep() -> str:
    from .inbound import sweep_all

    return ", ".join(f"{name}: {count}" for name, count in sweep_all().items())
