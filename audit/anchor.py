"""Anchor file: an append-only text file outside the database that records where the audit chain
stood — ``<sequence> <hash> <UTC time> <mac>`` — every ``AUDIT_ANCHOR_EVERY`` events and once a day
(schedule ``rxhub:audit-anchor``). Someone who can rewrite the database (delete the last events and
their head rows, with the trigger switched off) leaves a chain that is consistent in itself; the
anchor still names an event that is gone or differs (45 CFR 164.312(c)(2), corroborate that records
were not destroyed). Each line carries an HMAC with the audit key, so a line cannot be forged
without the key. Keep the file off the database host (or on append-only storage: ``chattr +a``,
WORM bucket, syslog)."""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class Anchor:
    line: int
    sequence: int
    hash: str
    at: str


def anchor_path() -> Path:
    return Path(settings.RXHUB["AUDIT_ANCHOR_FILE"])


def _mac(sequence: int, digest: str, at: str) -> str:
    from .events import audit_key

    return hmac.new(audit_key(), f"anchor|{sequence}|{digest}|{at}".encode(), hashlib.sha256).hexdigest()


def write_anchor(*, sequence: int, hash: str, path: Path | str | None = None) -> Path:  # noqa: A002
    """Append one line (O_APPEND, fsync): never rewrites what is there."""
    target = Path(path) if path is not None else anchor_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    line = f"{int(sequence)} {hash} {at} {_mac(int(sequence), hash, at)}\n".encode("ascii")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def anchor_now(*, path: Path | str | None = None) -> tuple[int, str] | None:
    """Anchor the current head (the daily schedule and ``manage.py audit_anchor``)."""
    from .events import chain_head

    head = chain_head()
    if head is None or head.sequence == 0:
        return None
    write_anchor(sequence=head.sequence, hash=head.hash, path=path)
    return head.sequence, head.hash


class AnchorFileError(Exception):
    pass


def read_anchors(path: Path | str) -> list[Anchor]:
    """Every line, checked: well formed, MAC valid, sequence never going backwards."""
    anchors: list[Anchor] = []
    try:
        text = Path(path).read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorFileError(f"cannot read the anchor file {path}: {exc}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 4 or not parts[0].isdigit():
            raise AnchorFileError(f"anchor file line {number} is malformed")
        sequence, digest, at, mac = int(parts[0]), parts[1], parts[2], parts[3]
        if not hmac.compare_digest(mac, _mac(sequence, digest, at)):
            raise AnchorFileError(f"anchor file line {number}: its MAC does not match (forged or edited line)")
        if anchors and sequence < anchors[-1].sequence:
            raise AnchorFileError(f"anchor file line {number}: sequence #{sequence} goes backwards")
        anchors.append(Anchor(number, sequence, digest, at))
    return anchors


def check_anchors(anchors: Iterable[Anchor], lookup) -> str | None:
    """``lookup(sequences) -> {sequence: hash}`` of stored events; returns the first problem."""
    anchors = list(anchors)
    for start in range(0, len(anchors), 1000):
        chunk = anchors[start:start + 1000]
        stored = lookup({a.sequence for a in chunk})
        for anchor in chunk:
            found = stored.get(anchor.sequence)
            if found is None:
                return (f"anchor line {anchor.line} records event #{anchor.sequence} ({anchor.at}) "
                        f"but the chain has no such event (events at the end deleted: truncated)")
            if found != anchor.hash:
                return (f"anchor line {anchor.line}: event #{anchor.sequence} does not match the anchored hash "
                        f"(chain rewritten after {anchor.at})")
    return None


def verify_anchor_file(path: Path | str) -> tuple[int, str | None]:
    """(number of anchors checked, first problem or None) against the stored chain."""
    from .models import AuditEvent

    try:
        anchors = read_anchors(path)
    except AnchorFileError as exc:
        return 0, str(exc)

    def lookup(sequences):
        return dict(AuditEvent.objects.filter(sequence__in=sequences).values_list("sequence", "hash"))

    return len(anchors), check_anchors(anchors, lookup)
