"""Recurring tasks of the core (synced by `manage.py sync_schedules`)."""
SCHEDULES = [
    {"name": "rxhub:outbox-retry", "func": "pharmacy.messaging.tasks.deliver_due_messages",
     "schedule_type": "I", "minutes": 1, "repeats": -1},
]
