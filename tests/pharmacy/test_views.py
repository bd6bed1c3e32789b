"""Base pages: dashboard, patient search, patient page — and their fixed query cost."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    AllergyFactory,
    CoverageFactory,
    FillFactory,
    LabResultFactory,
    PatientFactory,
    PrescriptionFactory,
)

pytestmark = pytest.mark.django_db


def _patient_with_history(n: int):
    patient = PatientFactory(first_name="Ada", last_name="Lovelace")
    for i in range(n):
        rx = PrescriptionFactory(patient=patient, drug__name=f"drug{i}")
        FillFactory.create_batch(2, prescription=rx)
        AllergyFactory(patient=patient, substance=f"Substance {i}")
        LabResultFactory(patient=patient)
    CoverageFactory(patient=patient)
    return patient


def test_login_required_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_dashboard_shows_queues_for_pharmacist(client, pharmacist):
    client.force_login(pharmacist)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Find a patient" in response.content


def test_patient_search_by_name_mrn_and_phone(client, pharmacist):
    client.force_login(pharmacist)
    patient = PatientFactory(first_name="Grace", last_name="Hopper", mrn="GH1", phone="617-555-4321")
    PatientFactory(first_name="Alan", last_name="Turing")
    for query in ("Hopper", "hopper, gr", "Grace Hopper", "GH1", "6175554321"):
        response = client.get("/patients/", {"q": query})
        assert response.status_code == 200
        names = [p.pk for p in response.context["page"].object_list]
        assert names == [patient.pk], query


def test_patient_page_shows_the_record(client, pharmacist):
    client.force_login(pharmacist)
    patient = _patient_with_history(2)
    response = client.get(f"/patients/{patient.pk}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Lovelace, Ada" in text and "drug0" in text and "Substance 1" in text and "Blue Harbor Health" in text


def test_patient_page_unknown_id_is_404(client, pharmacist):
    client.force_login(pharmacist)
    assert client.get("/patients/999999/").status_code == 404


@pytest.mark.parametrize("path", ["/patients/{pk}/", "/patients/?q=Lovelace"])
def test_pages_cost_a_fixed_number_of_queries(client, pharmacist, path):
    client.force_login(pharmacist)
    counts = []
    for size in (1, 8):
        patient = _patient_with_history(size)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path.format(pk=patient.pk)).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
