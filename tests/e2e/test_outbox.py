"""The outbox page (Chromium): a pharmacist sees a dead message with its last error and retries it;
the receiving pharmacy (a real HTTP server) gets it and the message shows as sent."""
import pytest

from pharmacy.messaging.outbox import outbox_deliver, outbox_enqueue
from pharmacy.models import OutboxMessage
from tests.interop.ncpdp_variants import NEW_RX_PAYLOAD

pytestmark = pytest.mark.django_db(transaction=True)


def test_pharmacist_retries_a_dead_message(page, login, make_user, http_receiver, settings):
    settings.RXHUB = {**settings.RXHUB, "OUTBOX_MAX_ATTEMPTS": 1}
    make_user("pharmacist", username="paula")
    http_receiver.fail_next(1, 503)
    message = outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX_PAYLOAD, transport="http",
                             destination=http_receiver.url + "/script", deliver_now=False)
    outbox_deliver(outbox_id=message.pk)
    message.refresh_from_db()
    assert message.status == "dead" and "503" in message.last_error
    sent = outbox_enqueue(kind="sms:refill-approved", payload="hello", transport="file", deliver_now=False)
    outbox_deliver(outbox_id=sent.pk)

    login("paula")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Dead (gave up) 1").click()
    row = page.locator(f'[data-message="{message.message_id}"]')
    assert row.get_by_test_id("outbox-status").inner_text() == "Dead (gave up)"
    assert "503" in row.inner_text()
    assert page.locator(f'[data-message="{sent.message_id}"]').count() == 0  # the chip filters
    row.get_by_role("button", name=f"Retry {message.message_id}").click()
    assert page.get_by_text(f"Message {message.message_id} put back in line for delivery.").is_visible()
    message.refresh_from_db()
    assert message.status == "sent"
    assert [r["path"] for r in http_receiver.requests] == ["/script", "/script"]
    page.get_by_role("link", name="Sent 2").click()
    assert page.locator(f'[data-message="{message.message_id}"]').get_by_test_id("outbox-status").inner_text() == "Sent"
    assert not page.get_by_role("button", name=f"Retry {message.message_id}").count()
    assert OutboxMessage.objects.get(pk=message.pk).history.filter(history_user__username="paula").exists()
