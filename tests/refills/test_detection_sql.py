"""The SQL detection engine opens exactly the requests the Python rule (compute_run_out_and_kind,
kept as detect_refills_reference) says are due: same prescriptions, run-out dates and kinds.
Property-tested with hypothesis on random prescriptions and fill histories, on the database the
suite runs on (PostgreSQL and SQLite)."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pharmacy.models import Prescription
from refills.detection import detect_refills, detect_refills_reference
from refills.models import RefillRequest
from tests.factories import DrugFactory, FillFactory, PatientFactory, PrescriberFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
STATUSES = ["active", "on_hold", "expired", "discontinued", "completed", "pending"]
SCHEDULES = ["none", "2", "3", "4", "5"]
FILL_STATUSES = ["dispensed", "partially_dispensed", "not_dispensed", "picked_up", "returned"]


@st.composite
def prescriptions(draw):
    schedule = draw(st.sampled_from(SCHEDULES))
    top = 0 if schedule == "2" else (5 if schedule in ("3", "4") else 11)
    authorized = draw(st.integers(0, top))
    written_ago = draw(st.one_of(st.integers(150, 200), st.integers(0, 420)))
    expires = draw(st.one_of(st.none(), st.integers(0, 420)))
    # Either any fill history, or a regular one whose supply runs out around today (so most
    # examples open something and the run-out boundaries are hit).
    any_fills = st.lists(st.tuples(st.integers(-20, 800), st.integers(1, 120), st.sampled_from(FILL_STATUSES)),
                         max_size=7)
    if draw(st.booleans()):
        fills = draw(any_fills)
    else:
        supply = draw(st.sampled_from([7, 30, 90]))
        last_ago = supply + draw(st.integers(-20, 70))
        gaps = draw(st.lists(st.integers(supply - 10, supply + 5), max_size=6))
        days, fills = last_ago, []
        for gap in [0, *gaps]:
            days += gap
            fills.append((days, supply, draw(st.sampled_from(["dispensed"] * 3 + FILL_STATUSES))))
    return {
        "status": draw(st.sampled_from(["active"] * 4 + STATUSES)), "schedule": schedule,
        "refills_authorized": authorized,
        "refills_remaining": draw(st.integers(0, authorized)), "written_ago": written_ago,
        "expires_after_written": expires, "fills": fills,
    }


def make(spec, drugs, patient, prescriber):
    rx = PrescriptionFactory(drug=drugs[spec["schedule"]], patient=patient, prescriber=prescriber,
                             refills_authorized=spec["refills_authorized"],
                             refills_remaining=spec["refills_remaining"])
    for ago, supply, status in spec["fills"]:
        FillFactory(prescription=rx, fill_date=TODAY - timedelta(days=ago), days_supply=supply, status=status)
    written = TODAY - timedelta(days=spec["written_ago"])
    expires = None if spec["expires_after_written"] is None else written + timedelta(days=spec["expires_after_written"])
    Prescription.objects.filter(pk=rx.pk).update(status=spec["status"], written_date=written, expiration_date=expires)
    return rx


class _Rollback(Exception):
    pass


def compare(specs, lookahead, chunk=50_000):
    """Both engines on the same rows (rolled back afterwards); returns the number due."""
    try:
        with transaction.atomic():
            patient, prescriber = PatientFactory(), PrescriberFactory()
            drugs = {s: DrugFactory(dea_schedule=s) for s in SCHEDULES}
            for spec in specs:
                make(spec, drugs, patient, prescriber)
            expected = detect_refills_reference(today=TODAY, lookahead=lookahead)
            dry = detect_refills(today=TODAY, lookahead=lookahead, dry_run=True, chunk=chunk)
            result = detect_refills(today=TODAY, lookahead=lookahead, chunk=chunk)
            opened = {r.prescription_id: (r.run_out_date, r.kind)
                      for r in RefillRequest.objects.filter(pk__in=result.request_ids)}
            assert opened == expected
            assert dry.due == result.due == result.opened == len(expected)
            assert dict(result.by_kind) == {k: n for k in ("refill", "renewal")
                                            if (n := sum(1 for v in expected.values() if v[1] == k))}
            history = RefillRequest.history.filter(id__in=result.request_ids, history_type="+")
            assert sorted(history.values_list("id", flat=True)) == sorted(result.request_ids)
            raise _Rollback(len(expected))
    except _Rollback as done:
        return done.args[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=st.lists(prescriptions(), min_size=1, max_size=10), lookahead=st.integers(0, 14),
       chunk=st.sampled_from([1, 3, 50_000]))
def test_sql_engine_opens_what_the_python_rule_says(specs, lookahead, chunk):
    compare(specs, lookahead, chunk)


def spec(fills, *, status="active", schedule="none", authorized=5, remaining=3, written_ago=100, expires=300):
    return {"status": status, "schedule": schedule, "refills_authorized": authorized, "refills_remaining": remaining,
            "written_ago": written_ago, "expires_after_written": expires, "fills": fills}


@pytest.mark.parametrize(("case", "due"), [
    (spec([(90, 30, "dispensed")]), 1),  # ran out exactly 60 days ago: still due
    (spec([(91, 30, "dispensed")]), 0),  # 61 days ago: therapy presumed stopped
    (spec([(23, 30, "dispensed")]), 1),  # runs out on the last day of the look-ahead window
    (spec([(22, 30, "dispensed")]), 0),  # one day later
    (spec([(40, 30, "dispensed"), (20, 30, "returned")]), 1),  # a returned fill carries no supply
    (spec([(50, 30, "dispensed"), (26, 30, "picked_up"), (26, 5, "dispensed")]), 0),  # same-day carry-over
    (spec([(d, 30, "dispensed") for d in (175, 145, 115, 85, 55, 27)], schedule="4", remaining=1,
          written_ago=176), 1),  # Schedule IV, 5 refills dispensed: renewal
    (spec([(d, 30, "dispensed") for d in (145, 115, 85, 55, 27)], schedule="4", remaining=1,
          written_ago=150), 1),  # Schedule IV, 4 refills dispensed: refill
    (spec([(27, 30, "dispensed")], written_ago=40, expires=42), 1),  # expires the day before run-out
    (spec([(27, 30, "dispensed")], written_ago=40, expires=43), 1),  # expires on the run-out day
    (spec([(27, 30, "dispensed")], written_ago=400, expires=None), 1),  # policy default expiry passed
    (spec([(27, 30, "dispensed")], schedule="3", written_ago=190, expires=None), 1),  # III past 6 months
    (spec([(27, 30, "dispensed")], status="on_hold"), 0),
    (spec([(27, 30, "dispensed")], status="completed"), 1),
    (spec([(27, 30, "not_dispensed")]), 0),  # no counted fill
])
def test_sql_engine_matches_python_rule_at_the_boundaries(case, due):
    assert compare([case], lookahead=7) == due
