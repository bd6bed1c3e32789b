"""django-q2 task functions for the outbox (thin: call the service)."""
from .outbox import outbox_deliver, outbox_deliver_due


def deliver_outbox_message(outbox_id: int) -> str:
    return outbox_deliver(outbox_id=outbox_id).status


def deliver_due_messages() -> int:
    return outbox_deliver_due()
