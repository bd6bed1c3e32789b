"""Tamper-evident audit chain: verify_audit finds an edited, deleted or reordered event."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.events import GENESIS, compute_hash, record_event
from audit.models import AuditChainHead, AuditEvent
from audit.verify import verify_chain

from .conftest import behind_the_apps_back

pytestmark = pytest.mark.django_db


def _sql(sql: str, params=()):
    with behind_the_apps_back("audit_auditevent") as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)


def test_verify_intact_chain_reports_ok(chain, capsys):
    events = list(AuditEvent.objects.order_by("sequence"))
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert all(compute_hash(e) == e.hash for e in events)
    call_command("verify_audit")
    assert f"intact: {len(events)} events" in capsys.readouterr().out


def test_verify_edited_event_detected(chain):
    _sql("UPDATE audit_auditevent SET summary = %s WHERE sequence = 3", ["harmless looking edit"])
    report = verify_chain()
    assert not report.ok
    assert report.first_break.sequence == 3 and "edited" in report.first_break.problem
    with pytest.raises(CommandError, match=r"BROKEN at event #3"):
        call_command("verify_audit")


def test_verify_edited_data_detected(chain):
    _sql("UPDATE audit_auditevent SET data = %s WHERE sequence = 2", ['{"i": 99}'])
    assert verify_chain().first_break.sequence == 2


def test_verify_deleted_event_detected(chain):
    _sql("DELETE FROM audit_auditevent WHERE sequence = 2")
    report = verify_chain()
    assert report.first_break.sequence == 3
    assert "missing" in report.first_break.problem


def test_verify_deleted_first_event_detected(chain):
    _sql("DELETE FROM audit_auditevent WHERE sequence = 1")
    assert verify_chain().first_break.sequence == 2


def test_verify_deleted_last_event_detected_by_head(chain):
    _sql("DELETE FROM audit_auditevent WHERE sequence = 5")
    report = verify_chain()
    assert report.first_break is not None and report.first_break.sequence is None
    assert "head" in str(report.first_break)


def test_verify_reordered_events_detected(chain):
    # Swap the positions of events 2 and 3 (sequence is unique: go through a free number).
    _sql("UPDATE audit_auditevent SET sequence = 1000 WHERE sequence = 2")
    _sql("UPDATE audit_auditevent SET sequence = 2 WHERE sequence = 3")
    _sql("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 1000")
    report = verify_chain()
    assert report.first_break.sequence == 2


def test_verify_reordered_and_rehashed_event_still_detected(chain):
    # A forger who recomputes the edited row's own hash still breaks the next link.
    event = AuditEvent.objects.get(sequence=3)
    event.summary = "forged"
    forged_hash = compute_hash(event)
    _sql("UPDATE audit_auditevent SET summary = %s, hash = %s WHERE sequence = 3", ["forged", forged_hash])
    report = verify_chain()
    assert report.first_break.sequence == 4 and "prev_hash" in report.first_break.problem


def test_chain_continues_after_many_events(db):
    from pharmacy.actors import system_actor

    for i in range(30):
        record_event(kind="test.bulk", actor=system_actor("system:maintenance"), data={"i": i})
    head = AuditChainHead.objects.order_by("-sequence").first()
    report = verify_chain(chunk_size=7)  # several chunks
    assert report.ok and report.checked == 30 and head.sequence == 30
    assert list(AuditChainHead.objects.values_list("sequence", flat=True)) == list(range(1, 31))
