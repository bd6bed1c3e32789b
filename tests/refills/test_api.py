"""REST API for refill requests: fields, filters, transitions, 409 on illegal ones."""
import pytest

from pharmacy.models import OutboxMessage

pytestmark = pytest.mark.django_db

FIELDS = {"id", "prescription", "patient", "kind", "source", "status", "eligibility", "protocol_trace", "decided_by",
          "decided_at", "note", "created_at"}


def test_create_then_retrieve_with_documented_fields(api_client_for, due_prescription):
    api = api_client_for("integrator")
    due_prescription.pharmacy.integrator_users.add(api.user)  # its own pharmacy's prescription
    created = api.post("/api/v1/refill-requests/", {"prescription": due_prescription.pk}, format="json")
    assert created.status_code == 201, created.json()
    body = api.get(f"/api/v1/refill-requests/{created.json()['id']}/").json()
    assert FIELDS <= set(body)
    assert body["source"] == "api" and body["status"] == "needs_review"
    assert isinstance(body["eligibility"], list) and isinstance(body["protocol_trace"], list)
    second = api.post("/api/v1/refill-requests/", {"prescription": due_prescription.pk}, format="json")
    assert second.status_code == 409 and second.json()["code"] == "duplicate_open_request"


def test_pharmacist_approving_a_renewal_is_409_prescriber_authorization_required(api_client_for, make_request):
    # Issue 13: this test used to approve a renewal as a pharmacist ("Called prescriber") — a new
    # prescription only the prescriber (or an agreement) may authorize.
    api = api_client_for("pharmacist")
    req = make_request(status="awaiting_prescriber", kind="renewal")
    response = api.post(f"/api/v1/refill-requests/{req.pk}/approve/",
                        {"note": "Called prescriber", "refills": 3, "quantity": "90", "days_supply": 90}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "prescriber_authorization_required"
    assert not OutboxMessage.objects.filter(related_id=str(req.pk), kind__startswith="ncpdp:").exists()


def test_approve_with_changes_under_agreement_and_illegal_repeat_is_409(api_client_for, make_request):
    from tests.factories import AgreementFactory, DrugFactory, PrescriptionFactory

    api = api_client_for("pharmacist")
    rx = PrescriptionFactory(drug=DrugFactory(name="atorvastatin", therapeutic_class="statin"), refills_remaining=0)
    AgreementFactory(prescriber=rx.prescriber, pharmacists=[api.user])
    req = make_request(status="needs_review", kind="renewal", prescription=rx)
    response = api.post(f"/api/v1/refill-requests/{req.pk}/approve/",
                        {"note": "Under CPA", "refills": 3, "quantity": "90", "days_supply": 90}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "approved_with_changes" and body["agreement"] is not None
    assert body["changes"]["refills"] == {"from": 5, "to": 3}
    message = OutboxMessage.objects.get(related_id=str(req.pk), kind__startswith="ncpdp:")
    assert f"under CPA #{body['agreement']}" in message.payload and "refills 5-&gt;3" in message.payload
    assert api.user.username in message.payload
    again = api.post(f"/api/v1/refill-requests/{req.pk}/approve/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "transition_not_allowed"


def test_deny_requires_reason(api_client_for, make_request):
    api = api_client_for("pharmacist")
    req = make_request()
    response = api.post(f"/api/v1/refill-requests/{req.pk}/deny/", {}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "reason"
    ok = api.post(f"/api/v1/refill-requests/{req.pk}/deny/", {"reason": "Needs a visit", "reason_code": "AM"},
                  format="json")
    assert ok.json()["status"] == "denied" and ok.json()["denial_reason_code"] == "AM"


def test_technician_cannot_approve_but_can_claim(api_client_for, make_request):
    api = api_client_for("technician")
    req = make_request()
    assert api.post(f"/api/v1/refill-requests/{req.pk}/approve/", {}, format="json").status_code == 403
    assert api.post(f"/api/v1/refill-requests/{req.pk}/claim/").json()["claimed_by"] == api.user.pk


def test_forward_and_cancel(api_client_for, make_request):
    api = api_client_for("pharmacist")
    req = make_request()
    assert api.post(f"/api/v1/refill-requests/{req.pk}/forward/", {}, format="json").json()["status"] == \
        "awaiting_prescriber"
    assert api.post(f"/api/v1/refill-requests/{req.pk}/cancel/", {"note": "dup"}, format="json").json()["status"] == \
        "cancelled"


def test_list_filters(api_client_for, make_request):
    api = api_client_for("pharmacist")
    a = make_request(status="needs_review", kind="refill")
    make_request(status="denied", kind="renewal")
    rows = api.get("/api/v1/refill-requests/", {"status": "needs_review"}).json()["results"]
    assert [r["id"] for r in rows] == [a.pk]
    assert api.get("/api/v1/refill-requests/", {"kind": "renewal"}).json()["count"] == 1
    assert api.get("/api/v1/refill-requests/", {"patient": a.patient_id}).json()["count"] == 1
    assert api.get("/api/v1/refill-requests/", {"prescription": a.prescription_id}).json()["count"] == 1


def test_approve_with_changes_99_refills_through_the_api_is_refused_naming_the_limit(api_client_for, make_request):
    # Issue 13 "Done when": 99 refills posted as "approve with changes" through the REST API (a
    # pharmacist under an agreement, the API path that accepts changes) is refused naming the limit.
    from tests.factories import AgreementFactory, DrugFactory, PrescriptionFactory

    api = api_client_for("pharmacist")
    rx = PrescriptionFactory(drug=DrugFactory(name="atorvastatin", therapeutic_class="statin"), refills_remaining=0)
    agreement = AgreementFactory(prescriber=rx.prescriber, pharmacists=[api.user], max_days_supply=0)
    req = make_request(status="needs_review", kind="renewal", prescription=rx)
    body = {"note": "Under CPA", "refills": 99, "quantity": "30", "days_supply": 30}
    response = api.post(f"/api/v1/refill-requests/{req.pk}/approve/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == "refills"
    assert "maximum authorization of 365 days" in str(response.json()) and "at most 12 refills" in str(response.json())
    # An agreement with its own days-of-supply limit refuses first, naming that limit.
    agreement.max_days_supply = 365
    agreement.save()
    response = api.post(f"/api/v1/refill-requests/{req.pk}/approve/", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "prescriber_authorization_required"
    assert "at most 365 days of supply per renewal" in response.json()["message"]
    req.refresh_from_db()
    assert req.status == "needs_review" and req.approved_refills is None
    assert not OutboxMessage.objects.filter(related_id=str(req.pk), kind__startswith="ncpdp:").exists()
