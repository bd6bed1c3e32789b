"""Issue 14, "an audit trail that survives its owner": the tamper cases someone with direct database
access can try — re-hash an edit without the key, truncate the tail (events and head rows), edit the
head — and the anchor file that catches what the chain alone cannot."""
from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.anchor import anchor_now, read_anchors, verify_anchor_file
from audit.events import canonical, compute_hash, record_event
from audit.models import AuditChainHead, AuditEvent
from audit.verify import verify_chain
from pharmacy.actors import system_actor

from .conftest import behind_the_apps_back

pytestmark = pytest.mark.django_db
TABLES = ("audit_auditevent", "audit_auditchainhead")
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")


def _sql(sql: str, params=()):
    with behind_the_apps_back(*TABLES) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)


def _rechain_from(sequence: int, summary: str, hasher) -> None:
    """A forger edits one event and recomputes every later hash, prev_hash and head row with ``hasher``."""
    prev = AuditEvent.objects.get(sequence=sequence - 1).hash if sequence > 1 else "0" * 64
    for event in AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"):
        if event.sequence == sequence:
            event.summary = summary
        event.prev_hash = prev
        new_hash = hasher(event)
        _sql("UPDATE audit_auditevent SET summary = %s, prev_hash = %s, hash = %s WHERE id = %s",
             [event.summary, prev, new_hash, event.pk])
        _sql("UPDATE audit_auditchainhead SET hash = %s WHERE sequence = %s", [new_hash, event.sequence])
        prev = new_hash


@pytest.mark.parametrize("hasher", [
    pytest.param(lambda e: hashlib.sha256(canonical(e)).hexdigest(), id="plain-sha256"),
    pytest.param(lambda e: compute_hash(e, key=b"guessed-key-guessed-key-guessed!"), id="wrong-key"),
])
def test_an_edit_rehashed_without_the_key_is_detected(chain, hasher):
    _rechain_from(3, "approved by nobody in particular", hasher)
    report = verify_chain()
    assert not report.ok and report.first_break.sequence == 3 and "edited" in report.first_break.problem
    with pytest.raises(CommandError, match=r"BROKEN at event #3"):
        call_command("verify_audit")


def test_an_edit_rehashed_with_the_key_verifies_so_the_key_must_stay_outside_the_database(chain):
    # The control case: the chain's strength is the key, not the algorithm.
    _rechain_from(3, "forged with the key", compute_hash)
    assert verify_chain().ok


def test_chain_hash_is_keyed(chain, settings):
    event = chain[0]
    assert event.hash != hashlib.sha256(canonical(event)).hexdigest()
    settings.RXHUB = {**settings.RXHUB, "AUDIT_KEY": "another-key-another-key-another-key!"}
    assert not verify_chain().ok


def test_truncated_tail_with_its_head_rows_is_found_only_by_the_anchor_file(chain, tmp_path):
    anchors = tmp_path / "anchor.log"
    assert anchor_now(path=anchors) == (5, chain[-1].hash)
    _sql("DELETE FROM audit_auditevent WHERE sequence >= 4")
    _sql("DELETE FROM audit_auditchainhead WHERE sequence >= 4")
    assert verify_chain().ok  # consistent in itself: this is what the anchor is for
    with pytest.raises(CommandError, match=r"anchor line 1 records event #5 .*truncated"):
        call_command("verify_audit", "--anchor", str(anchors))


def test_a_rewritten_anchored_event_is_reported_against_the_anchor(chain, tmp_path):
    anchors = tmp_path / "anchor.log"
    anchor_now(path=anchors)
    _rechain_from(5, "forged with the key", compute_hash)
    assert verify_chain().ok
    count, problem = verify_anchor_file(anchors)
    assert count == 1 and "does not match the anchored hash" in problem


def test_intact_chain_matches_its_anchors(chain, tmp_path, capsys):
    anchors = tmp_path / "anchor.log"
    anchor_now(path=anchors)
    record_event(kind="test.more", actor=system_actor("system:maintenance"))
    anchor_now(path=anchors)
    call_command("verify_audit", "--anchor", str(anchors))
    assert "2 anchors" in capsys.readouterr().out
    assert [a.sequence for a in read_anchors(anchors)] == [5, 6]


def test_a_forged_anchor_line_is_refused(chain, tmp_path):
    anchors = tmp_path / "anchor.log"
    anchor_now(path=anchors)
    _seq, digest, at, mac = anchors.read_text().split()
    anchors.write_text(f"3 {digest} {at} {mac}\n")
    count, problem = verify_anchor_file(anchors)
    assert count == 0 and "MAC does not match" in problem


def test_anchor_written_every_n_events_after_commit(db, settings, django_capture_on_commit_callbacks):
    from audit.anchor import anchor_path

    settings.RXHUB = {**settings.RXHUB, "AUDIT_ANCHOR_EVERY": 3}
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(7):
            record_event(kind="test.event", actor=system_actor("system:maintenance"), data={"i": i})
    assert [a.sequence for a in read_anchors(anchor_path())] == [3, 6]
    assert verify_anchor_file(anchor_path()) == (2, None)


def test_daily_schedule_anchors_the_head(chain):
    from audit.anchor import anchor_path
    from audit.tasks import SCHEDULES, anchor_audit_chain

    assert any(s["func"] == "audit.tasks.anchor_audit_chain" and s["schedule_type"] == "D" for s in SCHEDULES)
    assert anchor_audit_chain() == "anchored #5"
    assert [a.sequence for a in read_anchors(anchor_path())] == [5]


def test_edited_head_is_detected(chain):
    _sql("UPDATE audit_auditchainhead SET hash = %s WHERE sequence = 5", ["f" * 64])
    report = verify_chain()
    assert not report.ok and "head" in str(report.first_break)


def test_edited_older_head_row_is_detected(chain):
    _sql("UPDATE audit_auditchainhead SET hash = %s WHERE sequence = 2", ["e" * 64])
    report = verify_chain()
    assert not report.ok and "head row #2" in str(report.first_break)


def test_head_rows_are_append_only_one_per_event(chain):
    assert list(AuditChainHead.objects.values_list("sequence", "hash")) == [(e.sequence, e.hash) for e in chain]


@on_postgres
@pytest.mark.parametrize("sql", ["UPDATE audit_auditchainhead SET hash = 'x'", "DELETE FROM audit_auditchainhead"])
def test_postgres_refuses_head_update_and_delete_even_to_the_owner(chain, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@on_postgres
@pytest.mark.parametrize("table", TABLES)
def test_purge_setting_never_unlocks_the_chain_even_for_the_owner(chain, table):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('rxhub.retention_purge', 'on', true)")
        cursor.execute(f"DELETE FROM {table}")
