"""Detection spread over task workers (refills.tasks): one task per prescription id range, each
idempotent; together they open exactly what one sequential run opens. Tasks run inline here
(tests/conftest.py sets django-q2 sync); tests/pharmacy/test_redis_broker.py runs a real cluster."""
from datetime import timedelta

import pytest
from django.utils import timezone

from refills import tasks
from refills.detection import detect_refills, id_ranges
from refills.models import RefillRequest
from tests.factories import FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def make_prescriptions():
    """Seven prescriptions: filled 26, 27, 10, 28, 5, 24 and 29 days ago (30-day supply), the third
    with no refills left (a renewal); those filled 23+ days ago run out within 7 days."""
    rxs = []
    for i, ago in enumerate((26, 27, 10, 28, 5, 24, 29)):
        rx = PrescriptionFactory(days_supply=30, written_date=TODAY - timedelta(days=60),
                                 refills_authorized=3, refills_remaining=0 if i == 1 else 3)
        FillFactory(prescription=rx, fill_date=TODAY - timedelta(days=ago), days_supply=30)
        rxs.append(rx)
    return rxs


def opened_rows():
    return sorted(RefillRequest.objects.values_list("prescription_id", "run_out_date", "kind"))


def test_id_ranges_cover_every_prescription_once():
    rxs = make_prescriptions()
    ranges = id_ranges(3)
    ids = [rx.pk for rx in rxs]
    assert [sum(low <= pk < high for low, high in ranges) for pk in ids] == [1] * len(ids)
    assert len(ranges) == -(-(max(ids) - min(ids) + 1) // 3)


def test_fanout_opens_what_one_run_opens_and_evaluates_each(settings):
    make_prescriptions()
    expected_result = detect_refills(today=TODAY, lookahead=7, dry_run=True)
    task_ids = tasks.detect_refills_fanout(today=TODAY, lookahead=7, chunk=2)
    assert len(task_ids) == len(id_ranges(2)) >= 3
    rows = opened_rows()
    assert len(rows) == expected_result.due == 5
    assert sum(kind == "renewal" for _, _, kind in rows) == 1
    # every request was evaluated by its batch task (none left received) and has one creation row
    assert not RefillRequest.objects.filter(status="received").exists()
    assert RefillRequest.history.filter(history_type="+").count() == 5

    # the same day again, or one chunk delivered twice: nothing more opens
    tasks.detect_refills_fanout(today=TODAY, lookahead=7, chunk=2)
    low, high = id_ranges(2)[0]
    again = tasks.detect_refills_chunk(low, high, TODAY.isoformat(), 7)
    assert again["opened"] == 0 and again["evaluation_batches"] == 0
    assert opened_rows() == rows


def test_fanout_matches_sequential_detection():
    make_prescriptions()
    tasks.detect_refills_fanout(today=TODAY, lookahead=7, chunk=3, evaluate=False)
    fanned = opened_rows()
    RefillRequest.objects.all().delete()
    detect_refills(today=TODAY, lookahead=7)
    assert fanned == opened_rows() and len(fanned) == 5


def test_chunk_evaluates_what_an_earlier_attempt_left_received():
    rxs = make_prescriptions()
    low, high = min(rx.pk for rx in rxs), max(rx.pk for rx in rxs) + 1
    first = tasks.detect_refills_chunk(low, high, TODAY.isoformat(), 7, False)  # died before evaluating
    assert first["opened"] == 5 and RefillRequest.objects.filter(status="received").count() == 5
    again = tasks.detect_refills_chunk(low, high, TODAY.isoformat(), 7)
    assert again["opened"] == 0 and again["evaluation_batches"] == 1
    assert not RefillRequest.objects.filter(status="received").exists()


def test_daily_schedule_fans_out():
    make_prescriptions()
    assert tasks.detect_refills_daily() == "detection chunks enqueued: 1"
    assert RefillRequest.objects.count() == 5
