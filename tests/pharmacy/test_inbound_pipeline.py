"""The core inbound pipeline's pure rules (pharmacy/inbound.py): dedupe, backoff, hostile JSON."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pharmacy.inbound import (
    Earlier,
    PayloadError,
    clean_text,
    decode_payload,
    dedupe_decision,
    json_loads_safe,
    next_attempt_at,
    payload_sha256,
    retry_delay,
)

A, B = payload_sha256(b"first"), payload_sha256(b"second")


@pytest.mark.parametrize(("earlier", "sha", "expected"), [
    ([], A, ("new", None, False)),
    ([Earlier(1, "processed", A)], A, ("duplicate", 1, False)),
    ([Earlier(1, "unsupported", A)], A, ("duplicate", 1, False)),
    ([Earlier(1, "awaiting_match", A)], A, ("duplicate", 1, False)),
    ([Earlier(1, "received", A)], A, ("reprocess", 1, False)),
    ([Earlier(1, "failed", A)], A, ("reprocess", 1, False)),
    ([Earlier(1, "rejected", A)], A, ("reprocess", 1, False)),
    ([Earlier(1, "processed", B)], A, ("new", None, True)),  # same control ID, other content
    ([Earlier(1, "failed", B)], A, ("new", None, True)),
    ([Earlier(1, "processed", B), Earlier(2, "processed", A)], A, ("duplicate", 2, False)),
    ([Earlier(1, "failed", A), Earlier(2, "processed", A)], A, ("duplicate", 2, False)),
    ([Earlier(1, "duplicate", A)], A, ("new", None, False)),
], ids=["first", "resend-processed", "resend-unsupported", "resend-awaiting", "resend-received", "resend-failed",
        "resend-rejected", "reused", "reused-after-failure", "reused-then-resent", "failed-then-processed",
        "only-duplicates"])
def test_dedupe_decision(earlier, sha, expected):
    decision = dedupe_decision(sha256=sha, earlier=earlier)
    assert (decision.kind, decision.original_id, decision.control_id_reused) == expected


def test_backoff_doubles_and_stops_at_the_limit(settings):
    settings.RXHUB = {**settings.RXHUB, "INBOUND_MAX_ATTEMPTS": 4, "INBOUND_RETRY_BASE_SECONDS": 60,
                      "INBOUND_RETRY_MAX_SECONDS": 150}
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 150, 150]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert next_attempt_at(1, now) == now + timedelta(seconds=60)
    assert next_attempt_at(3, now) == now + timedelta(seconds=150)
    assert next_attempt_at(4, now) is None


@pytest.mark.parametrize(("raw", "code"), [
    (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "too_deep"),
    (b"{not json", "parse_error"),
    (b"\xff\xfe{}", "parse_error"),
])
def test_hostile_json_is_a_payload_error_not_a_crash(raw, code):
    with pytest.raises(PayloadError) as caught:
        json_loads_safe(raw)
    assert caught.value.code == code


def test_brackets_inside_strings_do_not_count_as_depth():
    value = json_loads_safe(b'{"text": "' + b"[" * 500 + b'\\"{"}', max_depth=4)
    assert value["text"].startswith("[[[") and value["text"].endswith('"{')


def test_lone_surrogates_are_refused_in_json_and_cleaned_in_text():
    with pytest.raises(PayloadError) as caught:
        json_loads_safe(b'{"entry": [{"id": "a\\ud800b"}]}')
    assert caught.value.code == "invalid_unicode" and "$.entry[0].id" in str(caught.value)
    assert json_loads_safe(b'{"id": "\\ud83d\\ude00"}')["id"] == "\U0001f600"  # a proper pair is fine
    assert json_loads_safe(b'{"id": "\\\\ud800"}')["id"] == "\\ud800"  # an escaped backslash, not an escape
    cleaned = clean_text("a\ud800b\x00c")
    cleaned.encode("utf-8")  # no UnicodeEncodeError
    assert cleaned == "a\ufffdb\ufffdc"
    assert decode_payload(b"caf\xe9") == "café"  # not UTF-8: cp1252, no byte lost
