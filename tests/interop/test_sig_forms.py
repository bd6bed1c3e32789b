"""The one sig/frequency parser (pharmacy/interop/sig.py) on directions as prescribers write them.

Each row was written by reading the directions the way a pharmacist reads them (ISMP list of
error-prone abbreviations for the Latin forms: ac = before meals, pc = after meals, hs = at bedtime).
"""
from __future__ import annotations

import pytest

from pharmacy.interop.sig import (
    comparable_frequency,
    frequency_from_period,
    frequency_from_timing,
    normalize_frequency,
    parse_directions,
    parse_sig,
)


@pytest.fixture(autouse=True)
def _plain_http():
    """Pure tests: shadow the Django-settings autouse fixture."""
    yield


# (directions, frequency code with qualifier, as_needed)
FREQUENCY_FORMS = [
    ("take 1 capsule by mouth 4 times daily", "qid", False),
    ("1 tab po 4 times a day", "qid", False),
    ("2 times daily", "bid", False),
    ("two times a day", "bid", False),
    ("3 times a day", "tid", False),
    ("three times per day with food", "tid with food", False),
    ("1 tablet 5 times a day", "5x daily", False),
    ("apply 2-3 times daily", "bid-tid", False),
    ("1 to 2 times a day", "daily-bid", False),
    ("twice a day", "bid", False),
    ("twice daily", "bid", False),
    ("once a day", "daily", False),
    ("every 8 hours", "q8h", False),
    ("every eight hours", "q8h", False),
    ("every 12 hrs", "q12h", False),
    ("q6h", "q6h", False),
    ("every 4 to 6 hours as needed for pain", "q4-6h", True),
    ("q4-6h prn", "q4-6h", True),
    ("every 24 hours", "daily", False),
    ("every other day", "qod", False),
    ("TIDAC", "tid ac", False),
    ("TID AC", "tid ac", False),
    ("1 tab BID PC", "bid pc", False),
    ("BIDPC", "bid pc", False),
    ("take 1 tablet three times daily before meals", "tid ac", False),
    ("after meals twice a day", "bid pc", False),
    ("QIDACHS", "qid ac hs", False),
    ("TID AC and HS", "qid ac hs", False),
    ("take one at bedtime", "qhs", False),
    ("HS", "qhs", False),
    ("every morning", "qam", False),
    ("once weekly", "weekly", False),
    ("three times a week", "tiw", False),
    ("every 2 weeks", "q2w", False),
    ("once a month", "monthly", False),
    ("PRN", "prn", True),
    ("as needed for anxiety", "prn", True),
    ("1 tab q.i.d.", "qid", False),
    ("b.i.d.", "bid", False),
]


@pytest.mark.parametrize(("text", "code", "prn"), FREQUENCY_FORMS)
def test_frequency_forms(text, code, prn):
    parsed = parse_directions(text)
    assert parsed.frequency_code == code
    assert normalize_frequency(text) == code
    assert parsed.as_needed is prn
    assert parsed.confidence["frequency"] >= 0.9


# (line, indication) — PRN with the reason written after it
PRN_REASONS = [
    ("Acetaminophen 650 mg PO q6h prn pain", "pain"),
    ("albuterol 2 puffs q4h prn wheezing", "wheezing"),
    ("lorazepam 0.5 mg po bid as needed for anxiety", "anxiety"),
    ("ondansetron 4 mg q8h as needed for nausea", "nausea"),
    ("hydroxyzine 25 mg at bedtime as needed for itching", "itching"),
]


@pytest.mark.parametrize(("line", "reason"), PRN_REASONS)
def test_prn_with_reason(line, reason):
    parsed = parse_sig(line)
    assert parsed.as_needed is True
    assert parsed.indication == reason


# (line, dose) — dose ranges
DOSE_RANGES = [
    ("1-2 tabs q4-6h prn pain", "1-2 tablets"),
    ("take 1 to 2 tablets by mouth every 6 hours", "1 to 2 tablets"),
    ("2-4 puffs every 4 hours as needed", "2-4 puffs"),
]


@pytest.mark.parametrize(("line", "dose"), DOSE_RANGES)
def test_dose_ranges(line, dose):
    assert parse_sig(line).dose == dose


TAPERS = [
    ("prednisone 10 mg: take 4 tabs daily x 3 days, then 3 tabs daily x 3 days, then 2 tabs daily x 3 days,"
     " then 1 tab daily x 3 days then stop", 5, "daily"),
    ("prednisone 40 mg daily x 5 days then 20 mg daily x 5 days", 2, "daily"),
    ("methylprednisolone dose pack: taper as directed", 1, ""),
    ("take 1 tab bid for 1 week then 1 tab daily", 2, "bid"),
]


@pytest.mark.parametrize(("line", "steps", "first_frequency"), TAPERS)
def test_tapers_are_flagged_with_their_steps(line, steps, first_frequency):
    parsed = parse_sig(line)
    assert parsed.taper is True
    assert len(parsed.steps) == steps
    assert parsed.frequency == first_frequency
    # the schedule changes: the single frequency field is never reported as certain
    assert parsed.confidence.get("frequency", 0.0) < 0.8
    assert any("taper" in note for note in parsed.notes)


def test_duration_is_read():
    assert parse_sig("amoxicillin 500 mg tid x 10 days").duration == "10 days"
    assert parse_sig("cephalexin 500 mg qid for 7 days").duration == "7 days"


@pytest.mark.parametrize("text", ["as directed", "use as instructed by physician", "see attached", "ut dict"])
def test_unreadable_directions_keep_the_text_and_say_so(text):
    parsed = parse_directions(text)
    assert parsed.unreadable is True
    assert parsed.text == text
    assert parsed.frequency == ""
    assert any("kept as written" in note and text in note for note in parsed.notes)


def test_missing_frequency_is_said_with_zero_confidence():
    parsed = parse_directions("take 1 tablet by mouth")
    assert not parsed.unreadable
    assert parsed.frequency == "" and parsed.confidence["frequency"] == 0.0
    assert parsed.notes == ["no frequency read: see the directions as written"]


def test_confidence_per_field():
    parsed = parse_sig("lisinopril 10 mg tablet daily")
    assert parsed.confidence["drug"] >= 0.9 and parsed.confidence["strength"] >= 0.9
    assert parsed.confidence["route"] == 0.7  # implied by "tablet", not written
    conflicted = parse_sig("metformin 500 mg bid daily")
    assert conflicted.confidence["frequency"] < 0.8


# Structured repeats (FHIR Timing.repeat, C-CDA PIVL_TS) give the same codes as the text.
@pytest.mark.parametrize(
    ("args", "kwargs", "code"),
    [
        ((8, "h"), {}, "q8h"),
        ((8, "h"), {"institution": True}, "tid"),
        ((6, "h"), {"institution": True}, "qid"),
        ((12, "h"), {}, "q12h"),
        ((1, "d"), {"frequency": 4}, "qid"),
        ((1, "d"), {"frequency": 2, "when": ["PC"]}, "bid pc"),
        ((1, "d"), {"when": ["HS"]}, "qhs"),
        ((1, "wk"), {"frequency": 2}, "biw"),
        ((2, "wk"), {}, "q2w"),
        ((1, "mo"), {}, "monthly"),
        ((4, "h"), {"period_max": 6}, "q4-6h"),
        ((2, "d"), {}, "qod"),
    ],
)
def test_structured_periods(args, kwargs, code):
    assert frequency_from_period(*args, **kwargs) == code


def test_fhir_timing_code_and_text():
    assert frequency_from_timing({"code": {"coding": [{"code": "QID"}]}}) == "qid"
    assert frequency_from_timing({"code": {"text": "three times a day"}}) == "tid"
    assert frequency_from_timing({"repeat": {"when": ["ACM"]}}) == "before breakfast"


@pytest.mark.parametrize(
    ("a", "b"),
    [("twice daily", "BID"), ("q12h", "bid"), ("tid ac", "3 times a day"), ("4 times daily", "QID"),
     ("every 24 hours", "once daily"), ("at bedtime", "qhs")],
)
def test_comparisons_use_one_key(a, b):
    assert comparable_frequency(a) == comparable_frequency(b)


def test_different_frequencies_stay_different():
    assert comparable_frequency("4 times daily") != comparable_frequency("daily")
    assert comparable_frequency("qhs") != comparable_frequency("bid")
