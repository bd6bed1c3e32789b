"""The transactional outbox: written with the change, delivered after commit, retried with
backoff, never delivered twice."""
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from pharmacy.messaging.outbox import backoff, outbox_deliver, outbox_deliver_due, outbox_enqueue, outbox_resend
from pharmacy.models import OutboxMessage
from tests.interop import ncpdp_variants

pytestmark = pytest.mark.django_db


# A real SCRIPT 2017071 NewRx (valid against the official schema when NCPDP_XSD_DIR is set).
NEW_RX = ncpdp_variants.build(next(v for v in ncpdp_variants.VARIANTS if v[0] == "NewRx"))


def _enqueue(**kwargs):
    defaults = {"kind": "ncpdp:NewRx", "payload": NEW_RX, "transport": "file", "deliver_now": False}
    return outbox_enqueue(**{**defaults, **kwargs})


def test_file_transport_writes_once_atomically(settings):
    message = _enqueue()
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 1
    path = Path(settings.RXHUB["OUTBOX_DIR"]) / "ncpdp-NewRx" / f"{message.message_id}.xml"
    assert path.read_text() == NEW_RX
    assert not list(path.parent.glob("*.part"))
    outbox_deliver(outbox_id=message.pk)  # a second run is a no-op
    message.refresh_from_db()
    assert message.attempts == 1


def test_http_transport_posts_with_message_id_and_token(http_receiver, monkeypatch):
    monkeypatch.setenv("PHARMACY_TOKEN", "s3cret")
    http_receiver.reply(200, "<Message><Body><Status><Code>010</Code></Status></Body></Message>")
    message = _enqueue(transport="http", destination=http_receiver.url + "/script", credentials_env="PHARMACY_TOKEN")
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "sent"
    assert "<Code>010</Code>" in message.response
    (request,) = http_receiver.requests
    assert request["path"] == "/script" and request["body"] == NEW_RX
    assert request["headers"]["x-message-id"] == message.message_id
    assert request["headers"]["authorization"] == "Bearer s3cret"


def test_http_failure_retries_with_backoff_then_succeeds(http_receiver):
    http_receiver.fail_next(2, 503)
    message = _enqueue(transport="http", destination=http_receiver.url)
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "failed" and "503" in message.last_error
    assert message.next_attempt_at > timezone.now()
    assert outbox_deliver_due() == 0  # not due yet
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert outbox_deliver_due() == 1
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    outbox_deliver_due()
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 3 and len(http_receiver.requests) == 3


def test_client_error_is_permanent_and_dead(http_receiver):
    http_receiver.reply(422, "bad message")
    message = _enqueue(transport="http", destination=http_receiver.url)
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "dead" and "422" in message.last_error


def test_gives_up_after_max_attempts(settings, http_receiver):
    settings.RXHUB = {**settings.RXHUB, "OUTBOX_MAX_ATTEMPTS": 2}
    http_receiver.fail_next(5)
    message = _enqueue(transport="http", destination=http_receiver.url)
    outbox_deliver(outbox_id=message.pk)
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "dead" and message.attempts == 2


def test_duplicate_at_receiver_counts_as_delivered(http_receiver):
    http_receiver.reply(409, "already have it")
    message = _enqueue(transport="http", destination=http_receiver.url)
    assert outbox_deliver(outbox_id=message.pk).status == "sent"


def test_dedupe_key_gives_one_message():
    first = _enqueue(dedupe_key="refill:1:decision")
    second = _enqueue(dedupe_key="refill:1:decision", payload="<Other/>")
    assert first.pk == second.pk and OutboxMessage.objects.count() == 1


def test_rollback_leaves_no_message():
    with pytest.raises(RuntimeError), transaction.atomic():
        _enqueue()
        raise RuntimeError("state change failed")
    assert OutboxMessage.objects.count() == 0


def test_resend_dead_message(pharmacist, http_receiver, django_capture_on_commit_callbacks):
    http_receiver.reply(422)
    message = _enqueue(transport="http", destination=http_receiver.url)
    outbox_deliver(outbox_id=message.pk)
    http_receiver.reply(200, "ok")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_resend(outbox_id=message.pk, actor=pharmacist)
    message.refresh_from_db()
    assert message.status == "sent"  # Q_CLUSTER sync in tests delivers on commit
    assert message.history.filter(history_user=pharmacist, history_change_reason="Resend requested").exists()


def test_backoff_grows_and_caps():
    assert [backoff(n).total_seconds() // 60 for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(30) == timedelta(hours=6)


def test_enqueue_on_commit_delivers_via_task(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        message = outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX, transport="file")
    message.refresh_from_db()
    assert message.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_concurrent_delivery_sends_once(http_receiver):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks across threads need PostgreSQL")
    message = _enqueue(transport="http", destination=http_receiver.url)
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            outbox_deliver(outbox_id=message.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(http_receiver.requests) == 1
