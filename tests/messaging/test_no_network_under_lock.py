"""No network I/O inside a transaction or while a row lock is held (issue 12; docs/design.md).

Each outside party is a real HTTP server on 127.0.0.1 whose handler records, at the moment the
request arrives, whether the calling thread's database connection was inside ``transaction.atomic``
(no transaction in autocommit mode means no row lock either). These tests run with real commits
(``transaction=True``), as production does.
"""

import pytest
from django.db import connection

from pharmacy.messaging import outbox
from pharmacy.messaging.outbox import outbox_deliver, outbox_enqueue
from pharmacy.models import OutboxMessage
from tests.interop.ncpdp_variants import NEW_RX_PAYLOAD

pytestmark = pytest.mark.django_db(transaction=True)


def _watch(receiver, caller, reply=(200, "ok", "text/plain")):
    """Record the caller's ``in_atomic_block`` as each request arrives at the receiver."""
    seen = []

    def responder(record):
        seen.append(caller.in_atomic_block)
        return reply

    receiver.responder = responder
    return seen


def test_outbox_sends_with_no_transaction_open_and_records_the_result(http_receiver):
    message = outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX_PAYLOAD, transport="http",
                             destination=http_receiver.url, deliver_now=False)
    seen = _watch(http_receiver, connection)  # the connection of this (the sending) thread
    delivered = outbox_deliver(outbox_id=message.pk)
    assert seen == [False]  # the HTTP call happened outside any transaction
    assert delivered.status == "sent" and delivered.attempts == 1
    reasons = list(message.history.order_by("history_id").values_list("history_change_reason", flat=True))
    assert reasons[-2:] == ["Delivery attempt 1 claimed", "Delivered (http)"]  # claim, commit, send, record
    # Sent once: a second delivery does not call the receiver again.
    outbox_deliver(outbox_id=message.pk)
    assert len(http_receiver.requests) == 1


def test_a_live_claim_is_not_sent_twice_and_an_expired_one_is_retried_with_the_same_id(http_receiver):
    from django.utils import timezone

    message = outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX_PAYLOAD, transport="http",
                             destination=http_receiver.url, deliver_now=False)
    claimed = outbox._claim(message.pk, actor=outbox.system_actor("system:outbox"))
    assert claimed.status == "sending"
    assert outbox_deliver(outbox_id=message.pk).status == "sending"  # another worker holds the claim
    assert http_receiver.requests == []
    # The claiming worker died mid-send: once its claim expires, the sweep sends the same message ID.
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert outbox.outbox_deliver_due() == 1
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2
    assert [r["headers"]["idempotency-key"] for r in http_receiver.requests] == [message.message_id]
