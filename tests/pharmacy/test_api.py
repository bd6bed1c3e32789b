"""The core REST API: CRUD, filters, pagination, tokens and the error format."""
import pytest

from pharmacy.models import Drug, Patient
from tests.factories import DrugFactory, PatientFactory, PharmacyFactory, PrescriberFactory, valid_npi

pytestmark = pytest.mark.django_db


def test_token_exchange_then_list_patients(client, make_user):
    make_user("pharmacist", username="paula", password="correct-horse-battery")
    PatientFactory.create_batch(3)
    response = client.post("/api/v1/auth/token/", {"username": "paula", "password": "correct-horse-battery"},
                           content_type="application/json")
    assert response.status_code == 200
    token = response.json()["token"]
    listed = client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token}")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 3 and len(body["results"]) == 3
    assert {"mrn", "first_name", "last_name", "birth_date", "sex", "phone", "email", "preferred_pharmacy",
            "contact_preference", "consent_to_messages", "last_visit_date"} <= set(body["results"][0])


def test_token_exchange_bad_password_names_the_field(client, make_user):
    make_user("pharmacist", username="paula", password="correct-horse-battery")
    response = client.post("/api/v1/auth/token/", {"username": "paula", "password": "nope"},
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == "password"


def test_create_patient_defaults_facility_and_records_history(api_client_for):
    api = api_client_for("technician")
    response = api.post("/api/v1/patients/", {
        "mrn": "A100", "first_name": "Ana", "last_name": "Silva", "birth_date": "1970-03-04", "sex": "F",
        "phone": "617-555-2222", "contact_preference": "sms", "consent_to_messages": True}, format="json")
    assert response.status_code == 201, response.json()
    patient = Patient.objects.get(pk=response.json()["id"])
    assert patient.facility.code == "MAIN"
    record = patient.history.latest()
    assert record.history_user == api.user
    assert "created through the API" in record.history_change_reason


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"npi": "1234567890"}, "npi", "npi_checksum"),
        ({"npi": "12345"}, "npi", "npi_format"),
        ({"dea_number": "AB1234564"}, "dea_number", "dea_checksum"),
        ({"npi": None}, "npi", None),  # human prescriber without an NPI
    ],
)
def test_prescriber_errors_name_the_field(api_client_for, payload, field, code):
    api = api_client_for("admin")
    body = {"first_name": "Ben", "last_name": "Adams", "npi": valid_npi(42), **payload}
    response = api.post("/api/v1/prescribers/", body, format="json")
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "validation_error"
    assert field in error["errors"]
    assert error["field"] == field
    if code:
        assert error["errors"][field][0]["code"] == code


def test_drug_ndc_is_normalised_from_hyphenated_form(api_client_for):
    api = api_client_for("pharmacist")
    response = api.post("/api/v1/drugs/", {"name": "metformin", "strength": "500 mg", "ndc": "0093-1048-01",
                                           "therapeutic_class": "biguanide", "dea_schedule": "none"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["ndc"] == "00093104801"
    assert Drug.objects.get(pk=response.json()["id"]).ndc == "00093104801"


def test_prescription_refills_on_schedule_ii_refused_with_citation(api_client_for):
    api = api_client_for("pharmacist")
    drug = DrugFactory(name="oxycodone", dea_schedule="2", therapeutic_class="opioid_analgesic")
    patient = PatientFactory()
    prescriber = PrescriberFactory()
    response = api.post("/api/v1/prescriptions/", {
        "patient": patient.pk, "prescriber": prescriber.pk, "drug": drug.pk, "sig": "1 tab q6h prn pain",
        "quantity": "20", "days_supply": 5, "refills_authorized": 1, "refills_remaining": 1,
        "written_date": "2026-11-20"}, format="json")
    assert response.status_code == 400
    assert "1306.12" in response.json()["message"]


def test_prescription_create_sets_expiration_and_schedule(api_client_for):
    api = api_client_for("integrator")
    pharmacy = PharmacyFactory()
    pharmacy.integrator_users.add(api.user)  # an integrator writes for its own pharmacies only
    drug = DrugFactory(name="lorazepam", dea_schedule="4", therapeutic_class="benzodiazepine")
    response = api.post(
        "/api/v1/prescriptions/",
        {
            "patient": PatientFactory(preferred_pharmacy=pharmacy).pk,
            "prescriber": PrescriberFactory().pk,
            "drug": drug.pk,
            "sig": "1 tab bid prn anxiety",
            "quantity": "60",
            "days_supply": 30,
            "refills_authorized": 2,
            "refills_remaining": 2,
            "written_date": "2026-11-01",
            "indication_code": "f411",
            "pharmacy": pharmacy.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["dea_schedule"] == "4"
    assert body["expiration_date"] == "2027-05-01"
    assert body["indication_code"] == "F41.1"


def test_unknown_icd10_code_refused(api_client_for):
    api = api_client_for("pharmacist")
    response = api.post("/api/v1/diagnoses/", {"patient": PatientFactory().pk, "code": "Q99.999"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "code"
    assert response.json()["errors"]["code"][0]["code"] == "icd10cm_unknown"


def test_filters_and_pagination(api_client_for):
    api = api_client_for("pharmacist")
    PatientFactory.create_batch(7, last_name="Okafor")
    PatientFactory.create_batch(2, last_name="Zed")
    page = api.get("/api/v1/patients/", {"q": "Okafor", "page_size": 5}).json()
    assert page["count"] == 7 and len(page["results"]) == 5 and page["next"]
    assert api.get("/api/v1/patients/", {"q": "Zed"}).json()["count"] == 2


def test_delete_is_not_offered(api_client_for):
    api = api_client_for("admin")
    patient = PatientFactory()
    assert api.delete(f"/api/v1/patients/{patient.pk}/").status_code == 405
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_not_found_has_error_format(api_client_for):
    response = api_client_for("pharmacist").get("/api/v1/patients/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_update_records_changed_fields(api_client_for):
    api = api_client_for("pharmacist")
    patient = PatientFactory()
    response = api.patch(f"/api/v1/patients/{patient.pk}/", {"phone": "617-555-9999"}, format="json")
    assert response.status_code == 200, response.json()
    latest = patient.history.latest()
    assert latest.phone == "617-555-9999"
    assert "phone" in latest.history_change_reason and latest.history_user == api.user
