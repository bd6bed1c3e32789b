"""History a person can read (issue 11 item 7): JSON values render as labelled lines, never as
Python reprs, on the renderer's real shapes and on a decided request's page and timeline."""
from __future__ import annotations

import pytest

from pharmacy.readable import item_line, readable_lines

TRIAGE = {"patient": "Ada Lovelace, 71 y", "medication": "lisinopril 10 mg tablet",
          "relevant_history": ["I10 Hypertension", "E11.9 Diabetes"], "labs": [],
          "priority": "routine", "match": {"score": 0.93, "fields": ["name", "birth_date"]}}
TRACE = [{"name": "Visit within 365 days", "passed": True, "detail": "seen 2026-03-01", "skipped": False},
         {"name": "Potassium in range", "passed": False, "detail": "", "skipped": False},
         {"name": "A1c", "passed": False, "detail": "no lab", "skipped": True}]
ELIGIBILITY = [{"code": "expired", "message": "Prescription expired", "blocking": True,
                "citation": "21 CFR 1306.22"},
               {"code": "late_visit", "message": "Last visit over a year ago", "blocking": False, "citation": ""}]
CHANGES = {"quantity": {"from": "30", "to": "90"}, "refills": {"from": 0, "to": 5}}


@pytest.mark.parametrize(("value", "expected"), [
    (TRIAGE, ["Patient: Ada Lovelace, 71 y", "Medication: lisinopril 10 mg tablet",
              "Relevant history: I10 Hypertension; E11.9 Diabetes", "Labs: —", "Priority: routine",
              "Match: Score: 0.93; Fields: name; birth_date"]),
    (TRACE, ["Rule: Visit within 365 days → passed (seen 2026-03-01)", "Rule: Potassium in range → failed",
             "Rule: A1c → skipped (no lab)"]),
    (ELIGIBILITY, ["Blocks: Prescription expired — 21 CFR 1306.22", "Note: Last visit over a year ago"]),
    (CHANGES, ["Quantity: 30 → 90", "Refills: 0 → 5"]),
    ({}, []), ([], []), (None, []), ("plain text", ["plain text"]),
    ({"urgent": True, "note": None}, ["Urgent: yes", "Note: —"]),
    ([1, "two"], ["1", "two"]),
])
def test_readable_lines_on_real_shapes(value, expected):
    lines = readable_lines(value)
    assert lines == expected
    assert not any("{'" in line or "['" in line for line in lines)


def test_item_line_of_a_nested_unknown_shape_has_no_repr():
    line = item_line({"a": {"b": [1, {"c": 2}]}})
    assert line == "A: B: 1; C: 2"


def _no_reprs(html: str) -> None:
    for repr_start in ("{'", "['", "{&#x27;", "[&#x27;", "{&quot;", "[&quot;"):
        assert repr_start not in html, repr_start


@pytest.mark.django_db
def test_decided_request_page_and_timeline_show_no_reprs(client, pharmacist):
    from refills import services
    from refills.links import LINK_ACTOR
    from refills.models import RefillRequest
    from tests.factories import PrescriptionFactory

    rx = PrescriptionFactory(refills_authorized=5, refills_remaining=3)
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="received",
                                       kind="renewal", source="pharmacy", pharmacy=rx.pharmacy,
                                       prescriber=rx.prescriber)
    services.refill_request_evaluate(request_id=req.pk)
    req.refresh_from_db()
    if req.status != "awaiting_prescriber":
        RefillRequest.objects.filter(pk=req.pk).update(status="awaiting_prescriber")
    # Structured fields the page and the timeline must render (and a history row that changes them).
    req = RefillRequest.objects.get(pk=req.pk)
    req.triage_summary = {**(req.triage_summary or {}), "match": {"score": 0.9, "fields": ["name"]}}
    req.protocol_trace = TRACE
    req.eligibility = [ELIGIBILITY[1]]
    req.save()
    services.refill_request_approve(request_id=req.pk, actor=LINK_ACTOR, refills=2, quantity="60", days_supply=60)
    req.refresh_from_db()
    assert req.status == "approved_with_changes" and req.changes

    client.force_login(pharmacist)
    html = client.get(f"/refills/{req.pk}/").content.decode()
    _no_reprs(html)
    changes = html[html.index('data-testid="changes"'):]
    changes = changes[: changes.index("</ul>")]
    assert "Refills: 5 → 2" in changes and "Days supply:" in changes and "→ 60" in changes
    assert "Rule: Potassium in range → failed" in html
    timeline = html[html.index(f'id="timeline-{req.pk}"'):]
    assert "Match: Score: 0.9; Fields: name" in timeline  # the triage summary's change, as lines
    assert "Rule: Visit within 365 days → passed" in timeline

    page = client.get(f"/audit/history/refills/refillrequest/{req.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    _no_reprs(body)
    assert "Refills: 5 → 2" in body
