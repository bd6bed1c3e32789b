"""The one store-first inbound pipeline (DESIGN.md "Store first, then process"): receive, dedupe,
process, retry. HL7 v2 / FHIR / C-CDA (reconciliation) and NCPDP SCRIPT (refills) plug into it.

Every stage is small and named so that it can be read, tested and optimised on its own:

1. **store** (:func:`store`) — the raw payload (up to the size limit) is committed in its own
   transaction before anything interprets it, refused payloads included, with its SHA-256;
2. **dedupe** (:func:`dedupe_decision`, pure) — a message is a duplicate only when sender,
   control ID **and** payload SHA-256 match an earlier message that is settled (processed); the
   same control ID with other content is a message of its own, flagged ``control_id_reused``; a
   resend of a message whose original is still ``received``, ``failed`` or ``rejected``
   reprocesses the original and is answered with that result;
3. **process** — the app's own step, in one transaction that locks the row (``select_for_update``)
   and moves it out of ``received``/``failed``: a message is processed at most once;
4. **retry** — :class:`InboundPipeline.sweep` processes rows left ``received`` for more than a
   minute (a listener died between store and process), and retries ``failed`` ones with
   exponential backoff up to ``INBOUND_MAX_ATTEMPTS``, after which they stay visible as failed.
   The schedule ``rxhub:inbound-sweep`` (pharmacy/tasks.py) runs every registered pipeline each
   minute; the MLLP listener runs it too.

Answers follow each standard: HL7 v2 MSA-1 (v2.5.1 §2.14.8: AA accepted, AE error — could not
be processed, AR reject — refused), FHIR OperationOutcome (R4 §3.1.0.9), NCPDP SCRIPT Error
(900 rejected, 601 unable to process, 602 receiver system error).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

log = logging.getLogger("pharmacy.inbound")

DEFAULTS = {
    # Largest inbound payload read (bytes); larger ones are stored cut at this size and refused.
    "MAX_INBOUND_BYTES": 5 * 1024 * 1024,
    # Deepest JSON nesting accepted (FHIR resources are a few levels deep; 64 is generous).
    "INBOUND_MAX_JSON_DEPTH": 64,
    # Failed messages are retried this many times in all (first attempt included), then stay failed.
    "INBOUND_MAX_ATTEMPTS": 6,
    # Backoff: first retry after this many seconds, doubling each time, at most the cap.
    "INBOUND_RETRY_BASE_SECONDS": 60,
    "INBOUND_RETRY_MAX_SECONDS": 6 * 3600,
    # A row still `received` after this long lost its processor (crash): the sweep processes it.
    "INBOUND_SWEEP_AFTER_SECONDS": 60,
}


# Retry-After (seconds) on a 503 while the database is away (RFC 9110 §10.2.3).
RETRY_AFTER_SECONDS = 30


def conf(name: str):
    return settings.RXHUB.get(name, DEFAULTS[name])


class InboundStatus(models.TextChoices):
    """One status set for every inbound message, whatever its format (DESIGN.md InboundMessage)."""

    RECEIVED = "received", "Received (stored, not processed yet)"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed (could not be processed; error kept, retried)"
    REJECTED = "rejected", "Rejected (refused: unreadable, oversize or not allowed; error kept)"
    DUPLICATE = "duplicate", "Duplicate (same sender, control ID and content as a processed message)"
    UNSUPPORTED = "unsupported", "Unsupported type (stored, not processed)"
    AWAITING_MATCH = "awaiting_match", "Waiting for a person to match the patient"


IS = InboundStatus
# Settled: a resend of one of these is a duplicate and answered as the first time.
SETTLED = (IS.PROCESSED, IS.UNSUPPORTED, IS.AWAITING_MATCH)
# Open: a resend of one of these reprocesses the original.
REPROCESSABLE = (IS.RECEIVED, IS.FAILED, IS.REJECTED)
TRANSITIONS: dict[str, set[str]] = {
    IS.RECEIVED: {IS.PROCESSED, IS.FAILED, IS.REJECTED, IS.UNSUPPORTED, IS.AWAITING_MATCH, IS.DUPLICATE},
    IS.FAILED: {IS.PROCESSED, IS.FAILED, IS.REJECTED, IS.UNSUPPORTED, IS.AWAITING_MATCH, IS.DUPLICATE},
    IS.REJECTED: {IS.PROCESSED, IS.FAILED, IS.REJECTED, IS.UNSUPPORTED, IS.AWAITING_MATCH, IS.DUPLICATE},
    IS.AWAITING_MATCH: {IS.PROCESSED, IS.FAILED},
    IS.PROCESSED: set(),
    IS.DUPLICATE: set(),
    IS.UNSUPPORTED: set(),
}


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------

def payload_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Text that every database can store: no NUL (PostgreSQL refuses it), no lone surrogate
    (not encodable as UTF-8; ``json.loads('"\\ud800"')`` yields one)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value


def decode_payload(raw: bytes) -> str:
    """Raw bytes → storable text without losing bytes (UTF-8, UTF-16/32 with a BOM or zero-padded,
    else cp1252, else Latin-1)."""
    from pharmacy.interop.detect import decode_unicode

    try:
        text = decode_unicode(raw)
    except UnicodeDecodeError:
        text = None
    if text is not None:
        return clean_text(text)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return clean_text(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    return clean_text(raw.decode("latin-1"))


@dataclass(frozen=True)
class Earlier:
    """An earlier message with the same sender and control ID (what dedupe looks at)."""

    id: int
    status: str
    sha256: str


@dataclass(frozen=True)
class Decision:
    kind: str  # "new" | "duplicate" (answer as the original) | "reprocess" (process the original)
    original_id: int | None = None
    control_id_reused: bool = False


def dedupe_decision(*, sha256: str, earlier: list[Earlier]) -> Decision:
    """Pure: what to do with a message given the earlier ones with its sender and control ID
    (duplicates excluded, oldest first)."""
    same = [e for e in earlier if e.sha256 == sha256 and e.status != IS.DUPLICATE]
    if not same:
        return Decision("new", control_id_reused=any(e.sha256 != sha256 for e in earlier))
    settled = next((e for e in same if e.status in SETTLED), None)
    if settled is not None:
        return Decision("duplicate", settled.id)
    return Decision("reprocess", same[0].id)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after ``attempts`` failed attempts: base · 2^(attempts−1), capped."""
    base, cap = conf("INBOUND_RETRY_BASE_SECONDS"), conf("INBOUND_RETRY_MAX_SECONDS")
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def next_attempt_at(attempts: int, now: datetime) -> datetime | None:
    """When a failed message is retried next; None once the attempts are used up."""
    if attempts >= conf("INBOUND_MAX_ATTEMPTS"):
        return None
    return now + retry_delay(attempts)


class PayloadError(ValueError):
    """A payload refused before any reader ran (oversize, too deep, undecodable)."""

    def __init__(self, message: str, *, code: str = "invalid_payload", http_status: int = 400):
        super().__init__(message)
        self.code, self.http_status = code, http_status


def json_depth_check(raw: bytes | str, *, max_depth: int | None = None) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before ``json.loads`` recurses into it (a deep
    array is a RecursionError, not a ValueError). Counts brackets outside strings; linear time."""
    limit = max_depth or conf("INBOUND_MAX_JSON_DEPTH")
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                raise PayloadError(f"JSON nested deeper than {limit} levels", code="too_deep")
        elif byte in (0x5D, 0x7D):
            depth -= 1


def json_loads_safe(raw: bytes | str, *, max_depth: int | None = None, **kwargs):
    """``json.loads`` for untrusted input: bounded depth, no lone surrogate in any string (RFC 8259
    §8.2: such a string is not Unicode and cannot be stored), any failure a PayloadError."""
    json_depth_check(raw, max_depth=max_depth)
    try:
        value = json.loads(raw, **kwargs)
    except RecursionError as exc:
        raise PayloadError("JSON nested too deeply", code="too_deep") from exc
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"not valid JSON: {exc}", code="parse_error") from exc
    probe = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if b"\\ud" in probe.lower():  # only then walk the value (an escape such as \ud800 is present)
        _no_lone_surrogate(value, "$")
    return value


def _no_lone_surrogate(value, path: str) -> None:
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise PayloadError(f"{where}: string holds a lone UTF-16 surrogate (not Unicode text)",
                                   code="invalid_unicode")
        elif isinstance(node, dict):
            for key, item in node.items():
                if _SURROGATE.search(key):
                    raise PayloadError(f"{where}: key holds a lone UTF-16 surrogate", code="invalid_unicode")
                stack.append((item, f"{where}.{key}"))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))


def read_body_capped(request, limit: int | None = None) -> tuple[bytes, int]:
    """At most ``limit + 1`` bytes of an HTTP request body (enough to know it is too big, never
    the whole of a huge one), and its size (declared Content-Length when larger)."""
    limit = limit if limit is not None else int(conf("MAX_INBOUND_BYTES"))
    django_request = getattr(request, "_request", request)
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if getattr(django_request, "_read_started", False) and hasattr(django_request, "_body"):
        body = django_request._body[: limit + 1]
    else:
        body = django_request.read(limit + 1)
    return body, max(declared, len(body))


# --------------------------------------------------------------------------------------------
# The pipeline (each app supplies its model and its processing step)
# --------------------------------------------------------------------------------------------

def store(message: models.Model, *, actor, reason: str) -> models.Model:
    """Stage 1: commit the raw message (one INSERT plus its history row), nothing else."""
    from django.db import transaction

    from pharmacy.actors import save_with_history

    with transaction.atomic():
        return save_with_history(message, actor=actor, reason=reason)


class InboundPipeline:
    """What is common to every inbound channel. Subclasses set ``model`` and the name of its
    control-ID field, and implement :meth:`process` (stage 3, safe to run twice)."""

    name = ""
    model: type[models.Model]
    control_field = "control_id"

    def process(self, message_id: int):  # pragma: no cover — abstract
        raise NotImplementedError

    # -- stage 2 ------------------------------------------------------------------------------
    def earlier(self, *, sender: str, control_id: str, before_id: int | None = None) -> list[Earlier]:
        if not control_id:
            return []
        qs = (self.model.objects.filter(sender=sender, **{self.control_field: control_id})
              .exclude(status=IS.DUPLICATE))
        if before_id is not None:
            qs = qs.filter(pk__lt=before_id)
        return [Earlier(pk, status, sha) for pk, status, sha in
                qs.order_by("id").values_list("pk", "status", "payload_sha256")]

    def decide(self, *, sender: str, control_id: str, sha256: str, before_id: int | None = None) -> Decision:
        return dedupe_decision(sha256=sha256, earlier=self.earlier(sender=sender, control_id=control_id,
                                                                   before_id=before_id))

    # -- stage 4 ------------------------------------------------------------------------------
    def due_ids(self, *, now: datetime, limit: int) -> list[int]:
        from django.db.models import Q

        stale = now - timedelta(seconds=conf("INBOUND_SWEEP_AFTER_SECONDS"))
        qs = self.model.objects.filter(
            Q(status=IS.RECEIVED, received_at__lt=stale)
            | Q(status=IS.FAILED, next_attempt_at__isnull=False, next_attempt_at__lte=now))
        return list(qs.order_by("received_at", "id").values_list("pk", flat=True)[:limit])

    def sweep(self, *, now: datetime | None = None, limit: int = 200) -> int:
        """Process rows left received (older than a minute) and failed rows whose retry is due."""
        from django.utils import timezone

        done = 0
        for pk in self.due_ids(now=now or timezone.now(), limit=limit):
            try:
                self.process(pk)
            except Exception:  # noqa: BLE001 — one bad row never stops the sweep
                log.exception("inbound %s: sweep of %s failed", self.name, pk)
            done += 1
        return done


PIPELINES: dict[str, InboundPipeline] = {}


def register(pipeline: InboundPipeline) -> InboundPipeline:
    """Apps register their pipeline in AppConfig.ready (the core never names the apps)."""
    PIPELINES[pipeline.name] = pipeline
    return pipeline


def sweep_all(*, limit: int = 200, on_error: Callable[[str, Exception], None] | None = None) -> dict[str, int]:
    out = {}
    for name, pipeline in PIPELINES.items():
        try:
            out[name] = pipeline.sweep(limit=limit)
        except Exception as exc:  # noqa: BLE001 — e.g. the database is down: next run tries again
            if on_error is not None:
                on_error(name, exc)
            else:
                log.warning("inbound %s: sweep failed: %s", name, exc)
            out[name] = 0
    return out
