"""REST API: claim rejections (reject 75 opens one case per claim reference; other codes are
their own reasons), pushed payer responses (malformed → 400, kept, nothing changes), PA cases
(filters, detail, submit/cancel/appeal with role rules)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from priorauth.models import ClaimRejection, PACase, PAResponse
from tests.priorauth.conftest import NDC

pytestmark = pytest.mark.django_db
URL = "/api/v1/claim-rejections/"


@pytest.fixture
def api_client_for(api_client_for):
    """Here an integrator speaks for every pharmacy and payer that exists when its client is made
    (scoping itself is tested in tests/test_partner_matrix.py)."""
    from pharmacy.models import Pharmacy
    from priorauth.models import Payer

    def factory(role=None, user=None):
        client = api_client_for(role, user)
        if role == "integrator":
            for bound in (*Pharmacy.objects.all(), *Payer.objects.all()):
                bound.integrator_users.add(client.user)
        return client

    return factory


def claim(rx, codes, ref="CLM-1", **extra):
    return {
        "prescription": rx.pk,
        "ndc": NDC,
        "bin": "610014",
        "pcn": "MEDDPRIME",
        "group": "G1234",
        "reject_codes": codes,
        "claim_reference": ref,
        "rejected_at": timezone.now().isoformat(),
        **extra,
    }


def test_reject_75_opens_a_case_and_answers_its_id(api_client_for, pa_rx, make_criteria):
    make_criteria()
    api = api_client_for("integrator")
    response = api.post(URL, claim(pa_rx, ["75"]), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    case = PACase.objects.get(pk=body["case"])
    assert (
        case.trigger == "reject_75" and case.claim_reference == "CLM-1" and case.status == "ready_for_review"
    )
    assert body["reasons"] == [
        {"code": "75", "meaning": "Prior authorization required", "action": "PA case opened"}
    ]
    assert case.history.earliest().history_user == api.user


def test_repeated_delivery_of_one_claim_opens_one_case(api_client_for, pa_rx):
    api = api_client_for("integrator")
    first = api.post(URL, claim(pa_rx, ["75"]), format="json").json()
    again = api.post(URL, claim(pa_rx, ["75"]), format="json")
    assert again.status_code == 200
    assert again.json()["case"] == first["case"] and again.json()["deliveries"] == 2
    assert PACase.objects.count() == 1 and ClaimRejection.objects.count() == 1


def test_a_second_claim_for_the_same_prescription_joins_the_open_case(api_client_for, pa_rx):
    api = api_client_for("integrator")
    first = api.post(URL, claim(pa_rx, ["75"], ref="CLM-A"), format="json").json()
    second = api.post(URL, claim(pa_rx, ["75"], ref="CLM-B"), format="json").json()
    assert second["case"] == first["case"] and "Joined open PA case" in second["reasons"][0]["action"]
    assert PACase.objects.count() == 1


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        ("70", "Product/service not covered"),
        ("76", "Plan limitations exceeded"),
        ("79", "Refill too soon"),
        ("88", "DUR reject"),
        ("AG", "Days supply limitation"),
        ("MR", "Product not on formulary"),
        ("99", "Unknown reject code"),
    ],
)
def test_other_reject_codes_are_recorded_without_a_case(api_client_for, pa_rx, code, meaning):
    response = api_client_for("integrator").post(URL, claim(pa_rx, [code], ref=f"C-{code}"), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["case"] is None
    assert body["reasons"] == [{"code": code, "meaning": meaning, "action": "Recorded (no PA case)"}]
    assert not PACase.objects.exists()


def test_75_among_other_codes_opens_a_case_and_keeps_each_reason(api_client_for, pa_rx):
    body = api_client_for("integrator").post(URL, claim(pa_rx, ["MR", "75"]), format="json").json()
    assert body["case"] is not None
    assert [(r["code"], r["action"]) for r in body["reasons"]] == [
        ("MR", "Recorded (no PA case)"),
        ("75", "PA case opened"),
    ]


def test_patient_and_ndc_find_the_prescription(api_client_for, pa_rx):
    data = claim(pa_rx, ["75"], patient=pa_rx.patient_id, ndc="0169-4130-13")
    del data["prescription"]
    body = api_client_for("integrator").post(URL, data, format="json").json()
    assert PACase.objects.get(pk=body["case"]).prescription == pa_rx


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bin": "12"}, "bin"),
        ({"ndc": "123"}, "ndc"),
        ({"reject_codes": []}, "reject_codes"),
        ({"prescription": None}, "prescription"),
        ({"rejected_at": "yesterday"}, "rejected_at"),
    ],
)
def test_bad_claim_is_a_400_naming_the_field(api_client_for, pa_rx, change, field):
    response = api_client_for("integrator").post(URL, {**claim(pa_rx, ["75"]), **change}, format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not ClaimRejection.objects.exists()


def test_reject_75_without_a_matching_prescription_is_refused(api_client_for, pa_rx):
    data = claim(pa_rx, ["75"], patient=pa_rx.patient_id, ndc="00002143380")
    del data["prescription"]
    response = api_client_for("integrator").post(URL, data, format="json")
    assert response.status_code == 400 and response.json()["field"] == "prescription"
    assert not ClaimRejection.objects.exists()  # no partial write


@pytest.mark.parametrize("role", ["pharmacist", "technician", "prescriber"])
def test_only_integrators_and_admins_post_claims(api_client_for, pa_rx, role):
    assert api_client_for(role).post(URL, claim(pa_rx, ["75"]), format="json").status_code == 403


# --- cases ----------------------------------------------------------------------------------------


@pytest.fixture
def case(api_client_for, pa_rx, make_criteria):
    make_criteria()
    body = api_client_for("integrator").post(URL, claim(pa_rx, ["75"]), format="json").json()
    return PACase.objects.get(pk=body["case"])


def test_case_detail_has_evidence_criteria_draft(api_client_for, case):
    body = api_client_for("technician").get(f"/api/v1/pa-cases/{case.pk}/").json()
    assert body["status"] == "ready_for_review" and body["evidence"] and body["criteria_result"]["all_met"]
    assert body["draft"]["letter"] == body["letter"] and body["submissions"] == [] and body["responses"] == []
    assert body["overdue"] is False and body["decision_due_at"] is None


def test_shadow_case_hides_the_draft_in_the_api(api_client_for, pa_rx, make_criteria):
    make_criteria(rollout_mode="shadow")
    body = api_client_for("integrator").post(URL, claim(pa_rx, ["75"]), format="json").json()
    detail = api_client_for("pharmacist").get(f"/api/v1/pa-cases/{body['case']}/").json()
    assert detail["draft"] is None and detail["letter"] == "" and "system_letter" not in detail


def test_list_filters(api_client_for, case):
    api = api_client_for("pharmacist")
    assert [r["id"] for r in api.get("/api/v1/pa-cases/?status=ready_for_review").json()["results"]] == [
        case.pk
    ]
    assert api.get("/api/v1/pa-cases/?status=approved").json()["results"] == []
    assert api.get("/api/v1/pa-cases/?overdue=true").json()["results"] == []
    assert api.get(f"/api/v1/pa-cases/?payer={case.payer_id}&drug=sema").json()["count"] == 1


def test_technician_cannot_submit_pharmacist_can(api_client_for, case):
    assert (
        api_client_for("technician")
        .post(f"/api/v1/pa-cases/{case.pk}/submit/", {}, format="json")
        .status_code
        == 403
    )
    response = api_client_for("pharmacist").post(
        f"/api/v1/pa-cases/{case.pk}/submit/", {"letter": case.letter + "\nReviewed."}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "submitted" and body["submissions"][0]["kind"] == "initiation"
    assert body["decision_due_at"] is not None
    again = api_client_for("pharmacist").post(f"/api/v1/pa-cases/{case.pk}/submit/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "transition_not_allowed"


def test_cancel_and_appeal_actions(api_client_for, case):
    api = api_client_for("pharmacist")
    assert api.post(f"/api/v1/pa-cases/{case.pk}/appeal/", {}, format="json").status_code == 409
    response = api.post(f"/api/v1/pa-cases/{case.pk}/cancel/", {"reason": "Switched therapy"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_pharmacist_opens_a_case_from_a_prescription(api_client_for, pa_rx):
    response = api_client_for("pharmacist").post(
        "/api/v1/pa-cases/", {"prescription": pa_rx.pk}, format="json"
    )
    assert response.status_code == 201 and response.json()["trigger"] == "staff"
    dup = api_client_for("pharmacist").post("/api/v1/pa-cases/", {"prescription": pa_rx.pk}, format="json")
    assert dup.status_code == 409 and dup.json()["code"] == "duplicate_open_case"


# --- pushed responses ----------------------------------------------------------------------------------


@pytest.fixture
def submitted(api_client_for, case):
    api_client_for("pharmacist").post(f"/api/v1/pa-cases/{case.pk}/submit/", {}, format="json")
    return case


def test_pushed_approval(api_client_for, submitted):
    today = timezone.localdate()
    response = api_client_for("integrator").post(
        "/api/v1/pa-responses/",
        {
            "case": submitted.pk,
            "decision": "approved",
            "authorization_number": "AUTH-1",
            "effective_date": today.isoformat(),
            "expiration_date": (today + timedelta(days=180)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] == "approved"
    detail = api_client_for("pharmacist").get(f"/api/v1/pa-cases/{submitted.pk}/").json()
    assert detail["authorization_number"] == "AUTH-1" and detail["responses"][0]["applied"]


def test_pushed_denial_then_appeal(api_client_for, submitted):
    api_client_for("integrator").post(
        "/api/v1/pa-responses/",
        {"case": submitted.pk, "decision": "denied", "reasons": ["Quantity exceeds plan limit"]},
        format="json",
    )
    api = api_client_for("pharmacist")
    detail = api.get(f"/api/v1/pa-cases/{submitted.pk}/").json()
    assert detail["status"] == "denied" and "Quantity exceeds plan limit" in detail["appeal_letter"]
    assert (
        api_client_for("technician")
        .post(f"/api/v1/pa-cases/{submitted.pk}/appeal/", {}, format="json")
        .status_code
        == 403
    )
    response = api.post(f"/api/v1/pa-cases/{submitted.pk}/appeal/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "appealed"


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approved"},
        {"decision": "yes"},
        {"decision": "denied", "reasons": "no"},
        {
            "decision": "approved",
            "authorization_number": "A",
            "effective_date": "31/12/2026",
            "expiration_date": "2027-01-01",
        },
    ],
)
def test_malformed_push_answers_400_is_kept_and_changes_nothing(api_client_for, submitted, body):
    response = api_client_for("integrator").post(
        "/api/v1/pa-responses/", {"case": submitted.pk, **body}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_response"
    kept = PAResponse.objects.get(pk=response.json()["response"])
    assert kept.is_malformed and not kept.applied and kept.case_id == submitted.pk
    assert PACase.objects.get(pk=submitted.pk).status == "submitted"


def test_push_for_unknown_case_is_400_and_kept(api_client_for):
    response = api_client_for("integrator").post(
        "/api/v1/pa-responses/", {"case": 999999, "decision": "closed"}, format="json"
    )
    assert response.status_code == 400 and "case" in response.json()["errors"]
    assert PAResponse.objects.get().case is None


def test_push_to_a_case_not_waiting_is_409(api_client_for, case):
    response = api_client_for("integrator").post(
        "/api/v1/pa-responses/", {"case": case.pk, "decision": "closed"}, format="json"
    )
    assert response.status_code == 409
    assert PACase.objects.get(pk=case.pk).status == "ready_for_review"
    kept = PAResponse.objects.get(case=case)  # kept with why it was not applied
    assert not kept.applied and "cannot become" in kept.errors["case"]
