"""PHI access log: every page view and API read of a patient's data records user, patient,
what, time and IP; written with one INSERT per request; admins filter it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import PhiAccess
from tests.factories import PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def test_patient_page_view_is_logged(client, pharmacist):
    patient = PatientFactory()
    client.force_login(pharmacist)
    response = client.get(f"/patients/{patient.pk}/", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    entry = PhiAccess.objects.get()
    assert (entry.user, entry.patient_id, entry.what, entry.ip_address, entry.method) == (
        pharmacist,
        patient.pk,
        "patient page",
        "10.1.2.3",
        "GET",
    )
    assert entry.path == f"/patients/{patient.pk}/" and entry.username == pharmacist.username


def test_refill_queue_logs_each_patient_shown_with_one_insert(client, pharmacist):
    from refills.models import RefillRequest

    for _ in range(3):
        rx = PrescriptionFactory()
        RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    client.force_login(pharmacist)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/refills/").status_code == 200
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "audit_phiaccess"')]
    assert len(inserts) == 1
    assert PhiAccess.objects.filter(what="refill queue").count() == 3


def test_api_reads_are_logged(api_client_for):
    from tests.factories import PharmacyFactory

    pharmacy = PharmacyFactory()
    patient = PatientFactory(preferred_pharmacy=pharmacy)
    client = api_client_for("integrator")
    pharmacy.integrator_users.add(client.user)  # an integrator reads its own pharmacies' patients
    assert client.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    assert client.get("/api/v1/patients/").status_code == 200
    whats = set(PhiAccess.objects.filter(patient_id=patient.pk).values_list("what", flat=True))
    assert whats == {"API patient record", "API patient list"}


def test_denied_request_is_not_logged_as_access(client, integrator):
    patient = PatientFactory()
    client.force_login(integrator)
    assert client.get(f"/patients/{patient.pk}/").status_code == 403
    assert not PhiAccess.objects.exists()


def test_access_log_page_filters_and_paginates(client, admin_user, pharmacist, technician):
    from django.utils import timezone

    rows = [
        PhiAccess(
            at=timezone.now(),
            user=pharmacist,
            username=pharmacist.username,
            patient_id=7,
            what="patient page",
            path="/patients/7/",
            method="GET",
            ip_address="10.0.0.1",
        )
        for _ in range(60)
    ]
    rows.append(
        PhiAccess(
            at=timezone.now(),
            user=technician,
            username=technician.username,
            patient_id=8,
            what="refill request 3",
            path="/refills/3/",
            method="GET",
        )
    )
    PhiAccess.objects.bulk_create(rows)
    client.force_login(admin_user)
    page = client.get("/audit/phi-access/")
    assert page.status_code == 200 and "Page 1 of 2" in page.content.decode()
    only = client.get("/audit/phi-access/", {"username": technician.username}).content.decode()
    assert "refill request 3" in only and "patient page" not in only
    by_patient = client.get("/audit/phi-access/", {"patient_id": 7, "page": 2}).content.decode()
    assert "Page 2 of 2" in by_patient and "refill request 3" not in by_patient


@pytest.mark.parametrize("role", ["pharmacist", "technician", "prescriber", "integrator"])
def test_access_log_page_is_for_admins_only(client, make_user, role):
    client.force_login(make_user(role))
    assert client.get("/audit/phi-access/").status_code == 403


def test_timeline_page_marks_access_and_shows_diffs(client, pharmacist):
    from pharmacy.actors import save_with_history

    rx = PrescriptionFactory(sig="Take 1 tablet daily")
    rx.sig = "Take 2 tablets daily"
    save_with_history(rx, actor=pharmacist, reason="Dose changed by prescriber", update_fields=["sig"])
    client.force_login(pharmacist)
    html = client.get(f"/audit/history/pharmacy/prescription/{rx.pk}/").content.decode()
    assert "Dose changed by prescriber" in html and "Take 2 tablets daily" in html and "<del>" in html
    assert PhiAccess.objects.filter(
        patient_id=rx.patient_id, what=f"history of prescription {rx.pk}"
    ).exists()
    assert client.get("/audit/history/pharmacy/nosuchmodel/1/").status_code == 404
    assert client.get("/audit/history/audit/auditevent/1/").status_code == 404


def test_patient_page_has_history_panel(client, pharmacist):
    from pharmacy.actors import save_with_history

    patient = PatientFactory(phone="617-555-0100")
    patient.phone = "617-555-0199"
    save_with_history(patient, actor=pharmacist, reason="New phone number", update_fields=["phone"])
    client.force_login(pharmacist)
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "History of this record" in html and "New phone number" in html


def test_api_reads_of_clinical_records_are_logged(api_client_for):
    from tests.factories import AllergyFactory, FillFactory

    fill = FillFactory()
    patient_id = fill.prescription.patient_id
    AllergyFactory(patient=fill.prescription.patient)
    api = api_client_for("pharmacist")
    for url in (
        "/api/v1/prescriptions/",
        f"/api/v1/prescriptions/{fill.prescription_id}/",
        "/api/v1/fills/",
        f"/api/v1/fills/{fill.pk}/",
        "/api/v1/allergies/",
    ):
        assert api.get(url).status_code == 200, url
    whats = set(PhiAccess.objects.filter(patient_id=patient_id).values_list("what", flat=True))
    assert whats == {
        "API prescription list",
        f"API prescription {fill.prescription_id}",
        "API fill list",
        f"API fill {fill.pk}",
        "API allergy list",
    }
    assert api.get("/api/v1/drugs/").status_code == 200  # not patient data: nothing logged
    assert PhiAccess.objects.filter(what__startswith="API drug").count() == 0


def test_admin_access_log_changelist_filters(client, make_user, pharmacist):
    from django.utils import timezone

    PhiAccess.objects.create(at=timezone.now(), user=pharmacist, username=pharmacist.username, patient_id=42,
                             what="patient page", path="/patients/42/", method="GET")
    admin = make_user("admin", is_staff=True)
    client.force_login(admin)
    page = client.get("/admin/audit/phiaccess/", {"q": "42"})
    assert page.status_code == 200 and "/patients/42/" in page.content.decode()
    only_posts = client.get("/admin/audit/phiaccess/", {"method": "POST"}).content.decode()
    assert "/patients/42/" not in only_posts


def test_users_are_deactivated_not_deleted_in_admin(client, make_user, pharmacist):
    superuser = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.post(f"/admin/auth/user/{pharmacist.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(pharmacist).objects.filter(pk=pharmacist.pk).exists()


def test_patient_search_results_are_logged(client, pharmacist):
    found = PatientFactory(last_name="Quackenbush")
    PatientFactory(last_name="Other")
    client.force_login(pharmacist)
    assert client.get("/patients/", {"q": "Quackenbush"}).status_code == 200
    assert list(PhiAccess.objects.values_list("patient_id", "what")) == [(found.pk, "patient search results")]


def test_api_reads_of_workflow_records_are_logged(api_client_for):
    """Refill requests, PA cases and reconciliation tasks all show a patient: list and detail reads
    are logged with what was read (the shared PhiReadMixin)."""
    from priorauth.models import PACase
    from reconciliation.models import ReconciliationTask
    from refills.models import RefillRequest

    rx = PrescriptionFactory()
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    case = PACase.objects.create(prescription=rx, patient=rx.patient, drug=rx.drug)
    task = ReconciliationTask.objects.create(patient=rx.patient)
    client = api_client_for("pharmacist")
    for url, pk, what in (
        ("/api/v1/refill-requests/", req.pk, "refill request"),
        ("/api/v1/pa-cases/", case.pk, "PA case"),
        ("/api/v1/reconciliation-tasks/", task.pk, "reconciliation task"),
    ):
        assert client.get(url).status_code == 200
        assert client.get(f"{url}{pk}/").status_code == 200
        logged = set(
            PhiAccess.objects.filter(patient_id=rx.patient_id, what__contains=what).values_list("what", flat=True)
        )
        assert logged == {f"API {what} list", f"API {what} {pk}"}, url
