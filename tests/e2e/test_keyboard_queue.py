"""The refill queue worked from the keyboard on the demo data (Chromium): Enter opens the first
routine refill, `a` approves it and the next open one opens by itself — 2 keys for the first, 1 for
each next; a warning asks one confirming key; on a phone (390 px) the queue does not scroll sideways."""
import io
import re

import pytest
from django.core.management import call_command

from refills.models import RefillRequest

pytestmark = pytest.mark.django_db(transaction=True)
DEMO_PASSWORD = "rx-demo-pass-2026"


class Keys:
    """Every key the pharmacist presses goes through here, so the count is the real one."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def press(self, key: str) -> None:
        self.count += 1
        self.page.keyboard.press(key)


def ready(page) -> None:
    page.wait_for_load_state("load")  # app.js (deferred) has attached its key handler


def request_id(url: str) -> int:
    return int(re.search(r"/refills/(\d+)/", url).group(1))


def test_routine_refills_take_two_keys_then_one_each(page, login, browser, live_server):
    call_command("seed_demo", stdout=io.StringIO())
    login("pharmacist", DEMO_PASSWORD)
    page.goto("/refills/")
    page.get_by_label("Routine refills").check()  # a filter chip (a click, not a decision key)
    page.wait_for_url(re.compile(r"routine=1"))
    ready(page)
    first_row = page.locator("[data-row] a[data-open]").first
    expected_first = request_id(first_row.get_attribute("href"))

    keys = Keys(page)
    decided = []
    per_item = []
    for n in range(3):
        before = keys.count
        if n == 0:
            keys.press("Enter")  # opens the first request of the view
            page.wait_for_url(re.compile(rf"/refills/{expected_first}/"))
            ready(page)
        current = request_id(page.url)
        req = RefillRequest.objects.get(pk=current)
        assert req.kind == "refill" and req.status == "needs_review", (req.kind, req.status)
        assert not page.get_by_test_id("warnings").count(), "a routine refill shows no warning"
        keys.press("a")
        page.wait_for_url(lambda url, cur=current: f"done={cur}" in url)
        ready(page)
        assert page.get_by_test_id("decided-note").is_visible()
        assert page.get_by_test_id("decided-note").get_by_role("link", name="Back to it").is_visible()
        req.refresh_from_db()
        assert req.status in ("approved", "sent_to_pharmacy") and req.decided_by.username == "pharmacist"
        decided.append(current)
        per_item.append(keys.count - before)
    assert per_item == [2, 1, 1], per_item
    assert len(set(decided)) == 3

    # A request with a warning (a controlled substance) asks one confirming key.
    controlled = (RefillRequest.objects.filter(status="needs_review", kind="refill")
                  .exclude(prescription__dea_schedule="none").exclude(prescription__dea_schedule="2").first())
    assert controlled is not None, "the demo has a controlled refill"
    page.goto(f"/refills/{controlled.pk}/")
    ready(page)
    assert page.get_by_test_id("warnings").is_visible()
    keys.press("a")
    assert page.get_by_text("Press a again to approve").is_visible()
    controlled.refresh_from_db()
    assert controlled.status == "needs_review"  # nothing decided on the first key
    keys.press("a")
    page.wait_for_url(lambda url: f"done={controlled.pk}" in url or url.rstrip("/").endswith("/refills"))
    controlled.refresh_from_db()
    assert controlled.status in ("approved", "sent_to_pharmacy")

    # The phone-sized queue (390 px) has no horizontal scroll.
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True)
    phone.set_default_timeout(15_000)
    mobile = phone.new_page()
    mobile.goto("/login/")
    mobile.get_by_label("Username").fill("pharmacist")
    mobile.get_by_label("Password").fill(DEMO_PASSWORD)
    mobile.get_by_role("button", name="Log in").click()
    mobile.wait_for_url(lambda url: "/login/" not in url)
    for path in ("/refills/", "/refills/?status=needs_review", f"/refills/{controlled.pk}/"):
        mobile.goto(path)
        assert mobile.locator("[data-row]").count() or "/refills/?" not in path
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width} px)"
    phone.close()
