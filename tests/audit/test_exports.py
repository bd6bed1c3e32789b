"""CSV exports: streamed, filtered by date range and patient, audited; the controlled-substance
report lists Schedule II–V decisions with who decided and when."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from audit.models import AuditEvent, PhiAccess
from tests.factories import DrugFactory, PatientFactory, PrescriberFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def _range(**extra):
    today = timezone.localdate()
    return {"start": (today - timedelta(days=7)).isoformat(), "end": today.isoformat(), **extra}


def _decided(rx, user, status="approved", days_ago=0):
    from refills.models import RefillRequest

    return RefillRequest.objects.create(
        prescription=rx,
        patient=rx.patient,
        status=status,
        decided_by=user,
        decided_at=timezone.now() - timedelta(days=days_ago),
    )


def test_controlled_substance_report_lists_schedule_2_to_5_decisions(client, admin_user, pharmacist):
    prescriber = PrescriberFactory()
    oxy = DrugFactory(
        name="oxycodone",
        strength="5 mg",
        therapeutic_class="opioid_analgesic",
        is_maintenance=False,
        dea_schedule="2",
    )
    lora = DrugFactory(
        name="lorazepam", strength="1 mg", therapeutic_class="benzodiazepine", dea_schedule="4"
    )
    plain = DrugFactory(name="atorvastatin", therapeutic_class="statin")
    c2 = _decided(
        PrescriptionFactory(drug=oxy, prescriber=prescriber, refills_authorized=0, refills_remaining=0),
        pharmacist,
        status="denied",
    )
    c4 = _decided(
        PrescriptionFactory(drug=lora, prescriber=prescriber, refills_authorized=2, refills_remaining=1),
        pharmacist,
    )
    _decided(PrescriptionFactory(drug=plain), pharmacist)
    _decided(
        PrescriptionFactory(drug=lora, prescriber=prescriber, refills_authorized=2, refills_remaining=1),
        pharmacist,
        days_ago=60,
    )  # outside the range
    client.force_login(admin_user)
    response = client.get("/audit/exports/controlled-substances.csv", _range())
    assert response["Content-Disposition"].startswith('attachment; filename="controlled-substances_')
    rows = _csv(response)
    assert [(r["request_id"], r["dea_schedule"], r["drug"], r["decided_by"], r["status"]) for r in rows] == [
        (str(c2.pk), "2", "oxycodone", pharmacist.username, "denied"),
        (str(c4.pk), "4", "lorazepam", pharmacist.username, "approved"),
    ]
    assert rows[0]["prescriber_dea"] == prescriber.dea_number and rows[0]["decided_at"]
    assert AuditEvent.objects.filter(kind="export.controlled-substances", actor=admin_user).exists()


def test_history_export_per_patient(client, admin_user, pharmacist):
    from pharmacy.actors import save_with_history

    mine, other = PrescriptionFactory(), PrescriptionFactory()
    mine.sig = "Take 2 tablets daily"
    save_with_history(mine, actor=pharmacist, reason="Dose change", update_fields=["sig"])
    client.force_login(admin_user)
    rows = _csv(client.get("/audit/exports/history.csv", _range(patient=mine.patient_id)))
    models = {r["model"] for r in rows}
    assert {"pharmacy.Patient", "pharmacy.Prescription"} <= models
    assert all(r["object_id"] != str(other.pk) for r in rows if r["model"] == "pharmacy.Prescription")
    change = next(r for r in rows if r["reason"] == "Dose change")
    assert (
        change["action"] == "changed"
        and change["user"] == pharmacist.username
        and "sig" in change["changed_fields"]
    )
    assert PhiAccess.objects.filter(patient_id=mine.patient_id, what="export of history").exists()
    event = AuditEvent.objects.get(kind="export.history")
    assert event.patient_id == mine.patient_id


def test_history_export_for_date_range_covers_all_history_models(client, admin_user):
    PrescriptionFactory()
    client.force_login(admin_user)
    rows = _csv(client.get("/audit/exports/history.csv", _range()))
    assert {"pharmacy.Patient", "pharmacy.Prescription", "pharmacy.Drug", "pharmacy.Pharmacy"} <= {
        r["model"] for r in rows
    }
    old = _csv(client.get("/audit/exports/history.csv", {"start": "2001-01-01", "end": "2001-01-31"}))
    assert old == []


def test_audit_event_export(client, admin_user, chain):
    client.force_login(admin_user)
    rows = _csv(client.get("/audit/exports/audit-events.csv", _range()))
    test_rows = [r for r in rows if r["kind"] == "test.event"]
    assert len(test_rows) == 5 and all(len(r["hash"]) == 64 for r in test_rows)


def test_export_refuses_bad_dates(client, admin_user):
    client.force_login(admin_user)
    assert (
        client.get("/audit/exports/history.csv", {"start": "2026-02-01", "end": "2026-01-01"}).status_code
        == 400
    )
    assert client.get("/audit/exports/history.csv", {"start": "yesterday"}).status_code == 400
    assert client.get("/audit/exports/nothing.csv", _range()).status_code == 404


def test_export_cells_cannot_inject_formulas():
    from audit.exports import csv_lines

    line = "".join(csv_lines([['=HYPERLINK("x")', "+1", "plain"]]))
    assert line.startswith("\"'=HYPERLINK") and "'+1" in line


@pytest.mark.parametrize("role", ["pharmacist", "technician", "prescriber", "integrator"])
def test_exports_are_for_admins_only(client, make_user, role):
    client.force_login(make_user(role))
    assert client.get("/audit/exports/controlled-substances.csv", _range()).status_code == 403


def test_export_streams_through_an_iterator(monkeypatch, admin_user, client):
    """A large export is not loaded into memory: rows come from QuerySet.iterator()."""
    from django.db.models.query import QuerySet

    calls = []
    original = QuerySet.iterator

    def spy(self, *args, **kwargs):
        calls.append(self.model._meta.label)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    PatientFactory()
    client.force_login(admin_user)
    response = client.get("/audit/exports/history.csv", _range())
    assert calls == []  # nothing read before the body is streamed
    _csv(response)
    assert "pharmacy.HistoricalPatient" in calls
