"""Walk the audit chain and report the first broken link (HIPAA 45 CFR 164.312(c)(2):
mechanism to corroborate that records have not been altered or destroyed).

Each event's hash is HMAC-SHA256 (key ``RXHUB_AUDIT_KEY``, outside the database) over its
canonical serialisation, which includes its sequence number and its predecessor's hash. So:

* an edit **re-hashed without the key** (plain SHA-256, or another key) still fails;

* an **edited** event no longer matches its own hash;
* a **deleted** event leaves a gap in the sequence and a ``prev_hash`` that points at nothing;
* **reordered** events (sequence numbers or rows swapped) break the ``prev_hash`` link;
* a deleted **tail** no longer reaches the chain head (``AuditChainHead``, append-only: one row per
  event); an **edited head** row no longer matches the event it names;
* a tail deleted together with its head rows (trigger switched off by the owner) is found by
  ``verify_audit --anchor FILE`` (audit/anchor.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .events import GENESIS, compute_hash


@dataclass(frozen=True)
class ChainBreak:
    sequence: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event #{self.sequence} (id {self.event_id})" if self.sequence is not None else "chain head"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    last_sequence: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def check_events(
    events: Iterable, *, head_sequence: int | None = None, head_hash: str | None = None
) -> ChainReport:
    """Pure walk over events in sequence order (anything with the AuditEvent attributes)."""
    expected_sequence, expected_prev, checked = 1, GENESIS, 0
    for event in events:
        checked += 1
        if event.sequence != expected_sequence:
            problem = (
                f"sequence {event.sequence} where {expected_sequence} was expected "
                f"({'events missing before it' if event.sequence > expected_sequence else 'duplicate or moved'})"  # noqa: E501
            )
            return ChainReport(checked, expected_sequence - 1, ChainBreak(event.sequence, event.pk, problem))
        if event.prev_hash != expected_prev:
            return ChainReport(
                checked,
                expected_sequence - 1,
                ChainBreak(
                    event.sequence,
                    event.pk,
                    "prev_hash does not match the preceding event (deleted or reordered)",
                ),
            )
        if compute_hash(event) != event.hash:
            return ChainReport(
                checked,
                expected_sequence - 1,
                ChainBreak(event.sequence, event.pk, "content does not match its hash (edited)"),
            )
        expected_sequence, expected_prev = event.sequence + 1, event.hash
    last = expected_sequence - 1
    if head_sequence is not None and (head_sequence != last or (last and head_hash != expected_prev)):
        return ChainReport(
            checked,
            last,
            ChainBreak(
                None,
                None,
                f"chain ends at #{last} but the head records #{head_sequence} (events at the end deleted)",
            ),
        )
    return ChainReport(checked, last, None)


def verify_chain(*, chunk_size: int = 2000) -> ChainReport:
    """Walk every stored event (streamed in sequence order; memory stays flat)."""
    from django.db.models import Exists, OuterRef

    from .models import AuditChainHead, AuditEvent

    head = AuditChainHead.objects.order_by("-sequence").first()
    events = AuditEvent.objects.order_by("sequence").iterator(chunk_size=chunk_size)
    report = check_events(
        events, head_sequence=head.sequence if head else 0, head_hash=head.hash if head else GENESIS
    )
    if not report.ok:
        return report
    # Every head row must name an event as it is stored (one query).
    stray = (AuditChainHead.objects.filter(sequence__gt=0)
             .exclude(Exists(AuditEvent.objects.filter(sequence=OuterRef("sequence"), hash=OuterRef("hash"))))
             .order_by("sequence").first())
    if stray is not None:
        return ChainReport(report.checked, report.last_sequence, ChainBreak(
            None, None, f"head row #{stray.sequence} does not match event #{stray.sequence} (head edited)"))
    return report
