"""A result message with thousands of OBX is stored set-based (issue 14 item 1): every result with
its history row as a single save would write it, a number of queries that does not grow with the
number of OBX, and a failure part-way leaves nothing half-written."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from pharmacy.models import LabResult
from reconciliation import services
from reconciliation.models import InboundMessage

from .conftest import hl7


def loinc(n: int) -> str:
    body = str(10000 + n)
    odd, even = body[::-1][0::2], body[::-1][1::2]
    total = sum(int(c) for c in "".join(str(int(c) * 2) for c in odd)) + sum(int(c) for c in even)
    return f"{body}-{(10 - total % 10) % 10}"


def oru(count: int, control: str) -> str:
    base = datetime(2026, 1, 1)
    obx = [f"OBX|{i}|NM|{loinc(i)}^Analyte {i}^LN||{i % 50}.5|mg/dL|0.6-1.3|N|||F|||"
           f"{(base + timedelta(seconds=i)).strftime('%Y%m%d%H%M%S')}" for i in range(1, count + 1)]
    return hl7(f"MSH|^~\\&|LAB|GENHOSP|RXHUB|PHARM|20261130||ORU^R01^ORU_R01|{control}|P|2.5.1",
               "PID|1||MRN12345^^^GENHOSP^MR||LOVELACE^ADA||19600105|F", "OBR|1|||24323-8^Panel^LN", *obx)


def test_three_thousand_results_are_all_stored_with_their_history(linked_ada):
    result = services.ingest(channel="mllp", payload=oru(3000, "MANY1"))
    assert result.message.status == "processed" and result.ack_code == "AA"
    assert LabResult.objects.filter(patient=linked_ada).count() == 3000
    assert result.message.summary["lab_results"] == 3000
    history = LabResult.history.filter(patient_id=linked_ada.pk)
    assert history.count() == 3000
    assert set(history.values_list("history_type", "history_user__username", "history_change_reason")) == {
        ("+", "system:inbound", f"From inbound message {result.message.pk}")}
    assert set(history.values_list("id", flat=True)) == set(
        LabResult.objects.filter(patient=linked_ada).values_list("id", flat=True))
    # the same message with another control ID: every result is already on file, none stored twice
    again = services.ingest(channel="mllp", payload=oru(3000, "MANY2"))
    assert again.message.summary["lab_results"] == 0
    assert LabResult.objects.filter(patient=linked_ada).count() == 3000


def test_query_count_does_not_grow_with_the_number_of_results(linked_ada):
    services.ingest(channel="mllp", payload=oru(3, "WARM"))  # system user and link exist
    counts = []
    for n, control in ((100, "Q100"), (1000, "Q1000")):
        LabResult.objects.all().delete()
        with CaptureQueriesContext(connection) as ctx:
            assert services.ingest(channel="mllp", payload=oru(n, control)).message.summary["lab_results"] == n
        counts.append(len(ctx.captured_queries))
    if connection.vendor == "postgresql":
        assert counts[0] == counts[1]  # one batch each for the rows and for their history rows
    else:  # SQLite binds at most 999 values a statement: batches of >= 76 rows (<= 13 columns)
        assert counts[1] - counts[0] <= 2 * (-(-1000 * 13 // 999))


def test_a_failure_part_way_stores_nothing_and_marks_the_message_failed(linked_ada, monkeypatch):
    from reconciliation.services import inbound

    def broken(*args, **kwargs):  # after the results are written, before the message is done
        raise RuntimeError("disk full")

    monkeypatch.setattr(inbound, "_store_problems", broken)
    result = services.ingest(channel="mllp", payload=oru(500, "FAIL1"))
    assert result.ack_code == "AE"
    assert InboundMessage.objects.get(pk=result.message.pk).status == "failed"
    assert "disk full" in InboundMessage.objects.get(pk=result.message.pk).error
    assert not LabResult.objects.filter(patient=linked_ada).exists()
    assert not LabResult.history.filter(patient_id=linked_ada.pk).exists()

