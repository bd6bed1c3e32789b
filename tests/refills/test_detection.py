"""Detection engine: who is due, refill vs renewal, idempotent, set-based."""
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from refills.detection import detect_refills
from refills.models import RefillRequest
from tests.factories import DrugFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def rx_with_fills(*fill_days_ago, days_supply=30, **kwargs):
    kwargs.setdefault("written_date", TODAY - timedelta(days=max(fill_days_ago) + 2))
    rx = PrescriptionFactory(days_supply=days_supply, **kwargs)
    for ago in fill_days_ago:
        FillFactory(prescription=rx, fill_date=TODAY - timedelta(days=ago), days_supply=days_supply)
    return rx


def opened(rx):
    return RefillRequest.objects.filter(prescription=rx).first()


def test_due_within_lookahead_opens_refill_with_run_out_date():
    rx = rx_with_fills(26)  # 30 days from 26 days ago → runs out in 4 days
    detect_refills(lookahead=7)
    req = opened(rx)
    assert req.kind == "refill" and req.source == "detection" and req.status == "received"
    assert req.run_out_date == TODAY + timedelta(days=4)
    assert req.history.latest().history_user.username == "system:refill-detection"


def test_not_due_yet_opens_nothing():
    rx = rx_with_fills(10)
    detect_refills(lookahead=7)
    assert opened(rx) is None


def test_early_fill_carries_supply_over():
    # Filled 50 and 26 days ago (the second 6 days early): 6 days carry over, runs out in 10 days.
    rx = rx_with_fills(50, 26)
    detect_refills(lookahead=7)
    assert opened(rx) is None
    detect_refills(lookahead=10)
    assert opened(rx).run_out_date == TODAY + timedelta(days=10)


def test_no_refills_left_is_a_renewal():
    rx = rx_with_fills(27, refills_authorized=2, refills_remaining=0)
    detect_refills(lookahead=7)
    assert opened(rx).kind == "renewal"


def test_schedule_ii_is_always_a_renewal():
    drug = DrugFactory(name="oxycodone", dea_schedule="2", therapeutic_class="opioid_analgesic", is_urgent=False)
    rx = rx_with_fills(27, drug=drug, refills_authorized=0, refills_remaining=0)
    detect_refills(lookahead=7)
    assert opened(rx).kind == "renewal"


def test_schedule_iv_past_six_months_is_a_renewal():
    drug = DrugFactory(name="alprazolam", dea_schedule="4", therapeutic_class="benzodiazepine")
    rx = rx_with_fills(27, drug=drug, refills_authorized=5, refills_remaining=3,
                       written_date=TODAY - timedelta(days=185))
    detect_refills(lookahead=7)
    assert opened(rx).kind == "renewal"


def test_schedule_v_not_limited_to_six_months():
    drug = DrugFactory(name="pregabalin", dea_schedule="5", therapeutic_class="antiepileptic")
    rx = rx_with_fills(27, drug=drug, refills_authorized=11, refills_remaining=6,
                       written_date=TODAY - timedelta(days=200))
    detect_refills(lookahead=7)
    assert opened(rx).kind == "refill"


def test_expiring_before_run_out_is_a_renewal():
    rx = rx_with_fills(27, written_date=TODAY - timedelta(days=364))
    rx.expiration_date = TODAY + timedelta(days=1)
    rx.save()
    detect_refills(lookahead=7)
    assert opened(rx).kind == "renewal"


def test_urgent_drug_flagged():
    drug = DrugFactory(name="warfarin", therapeutic_class="anticoagulant", is_urgent=True)
    rx = rx_with_fills(28, drug=drug)
    detect_refills(lookahead=7)
    assert opened(rx).is_urgent


def test_second_run_is_idempotent_and_dry_run_writes_nothing():
    rx_with_fills(27)
    rx_with_fills(29)
    assert detect_refills(lookahead=7, dry_run=True).due == 2
    assert RefillRequest.objects.count() == 0
    assert detect_refills(lookahead=7).opened == 2
    again = detect_refills(lookahead=7)
    assert again.opened == 0 and RefillRequest.objects.count() == 2


def test_queries_do_not_grow_with_prescriptions():
    detect_refills(lookahead=7)  # warm-up: the system actor's user row is created once
    counts = []
    for n in (2, 12):
        RefillRequest.objects.all().delete()
        for _ in range(n):
            rx_with_fills(27)
        with CaptureQueriesContext(connection) as ctx:
            detect_refills(lookahead=7)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_command_prints_summary_and_evaluates(capsys):
    rx_with_fills(27)
    call_command("detect_refills", "--lookahead", "7")
    out = capsys.readouterr().out
    assert "1 due within 7 days" in out and "opened 1 request" in out and "Evaluation:" in out
    assert RefillRequest.objects.get().status == "needs_review"


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_open_one_request_each():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent inserts need PostgreSQL")
    for _ in range(20):
        rx_with_fills(27)
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            detect_refills(lookahead=7)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert RefillRequest.objects.count() == 20
