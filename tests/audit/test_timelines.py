"""Every review page carries a history timeline (who changed what and when, field by field)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REVIEW_TEMPLATES = [
    "refills/refill_request_detail.html",
    "priorauth/case_detail.html",
    "reconciliation/task_detail.html",
    "audit/timeline.html",
]


@pytest.mark.parametrize("name", REVIEW_TEMPLATES)
def test_review_page_template_includes_the_timeline(name):
    path = ROOT / "templates" / name
    if not path.exists():
        pytest.skip(f"{name} not built yet")
    assert "history_timeline" in path.read_text()


@pytest.mark.django_db
def test_refill_review_page_shows_who_changed_what(client, pharmacist):
    from refills import services
    from refills.models import RefillRequest
    from tests.factories import PrescriptionFactory

    rx = PrescriptionFactory()
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Needs an office visit")
    client.force_login(pharmacist)
    html = client.get(f"/refills/{req.pk}/").content.decode()
    section = html[html.index(f'id="timeline-{req.pk}"') :]
    assert (
        "Paula Reyes" in section
        and "<del>Needs pharmacist review</del>" in section
        and "<ins>Denied</ins>" in section
    )
    assert "decided by: <del>—</del> → <ins>Paula Reyes</ins>" in section  # a person, not an id
