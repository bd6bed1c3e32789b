"""Issue 14 item 3: partners see and touch only their own. Two integrator accounts bound to two
pharmacies (and two payer accounts bound to two payers); every object endpoint of the API router —
list, retrieve, update and each detail action, read from the URL configuration — is tried in both
directions: the other side's rows are never listed, and acting on them answers 404 (403 where the
role is refused anyway) and changes nothing."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import (
    AllergyFactory,
    CoverageFactory,
    FillFactory,
    LabResultFactory,
    PatientFactory,
    PharmacyFactory,
    PrescriptionFactory,
)
from tests.interop.ncpdp_variants import NEW_RX_PAYLOAD

pytestmark = pytest.mark.django_db
SIDES = ("A", "B")
# Router basenames whose rows belong to nobody in particular (reference data, no PHI).
SHARED = {"prescriber", "drug"}


def _side(label, make_user, pharmacist):
    from pharmacy.actors import save_with_history, system_actor
    from pharmacy.messaging.outbox import outbox_enqueue
    from pharmacy.models import Diagnosis, Encounter
    from priorauth.models import Payer
    from priorauth.services import pa_case_open
    from reconciliation.models import InboundMessage
    from refills.services import refill_request_open

    actor = system_actor("system:maintenance")
    pharmacy = PharmacyFactory(name=f"Pharmacy {label}")
    integrator = make_user("integrator", username=f"integrator_{label.lower()}")
    pharmacy.integrator_users.add(integrator)
    bin_ = "61001" + ("4" if label == "A" else "5")
    payer = Payer.objects.create(name=f"Payer {label}", bin=bin_)
    payer_account = make_user("integrator", username=f"payer_{label.lower()}")
    payer.integrator_users.add(payer_account)
    patient = PatientFactory(last_name=f"Side{label}", preferred_pharmacy=pharmacy)
    rx = PrescriptionFactory(patient=patient, pharmacy=pharmacy, refills_authorized=3, refills_remaining=3)
    CoverageFactory(patient=patient, bin=bin_, pcn="")
    objects = {
        "patient": patient,
        "pharmacy": pharmacy,
        "prescription": rx,
        "fill": FillFactory(prescription=rx, pharmacy=pharmacy),
        "allergy": AllergyFactory(patient=patient),
        "diagnosis": save_with_history(Diagnosis(patient=patient, code="E11.9"), actor=actor, reason="test"),
        "coverage": patient.coverages.get(),
        "labresult": LabResultFactory(patient=patient),
        "encounter": save_with_history(Encounter(patient=patient, date=timezone.localdate(), kind="office"),
                                       actor=actor, reason="test"),
        "refill-request": refill_request_open(prescription=rx, actor=actor, source="api", evaluate=False),
        "pa-case": pa_case_open(prescription_id=PrescriptionFactory(patient=patient, pharmacy=pharmacy).pk,
                                actor=pharmacist),
        "inbound-message": save_with_history(
            InboundMessage(channel="http_hl7", payload="MSH|^~\\&|", sender=f"EHR{label}", control_id=f"C-{label}",
                           patient=patient, status="failed", error="test"), actor=actor, reason="test"),
    }
    objects["outbox"] = outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX_PAYLOAD, transport="file", actor=actor,
                                       reason="test", related=objects["refill-request"], deliver_now=False)
    assert objects["pa-case"].payer == payer
    return {"integrator": integrator, "payer_account": payer_account, "payer": payer, "objects": objects}


@pytest.fixture
def world(make_user, pharmacist):
    return {label: _side(label, make_user, pharmacist) for label in SIDES}


def _client(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _endpoints():
    """(basename, kind, method, url template) for every router route, from the URL configuration."""
    from pharmacy.api.urls import router

    found = []
    for prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            detail = "{lookup}" in route.url
            url = "/api/v1/" + route.url.replace("^", "").replace("$", "").replace("{prefix}", prefix) \
                .replace("{lookup}", "{pk}").replace("{trailing_slash}", "/")
            for method, action in route.mapping.items():
                if not hasattr(viewset, action) or action in ("destroy",):
                    continue
                found.append((basename, action, method, url, detail))
    return found


def _row_ids(response) -> set[int]:
    body = response.json()
    rows = body.get("results", body) if isinstance(body, dict) else body
    return {row["id"] for row in rows}


def test_every_object_endpoint_is_in_the_matrix():
    missing = {basename for basename, *_ in _endpoints()} - SHARED - {
        "patient", "pharmacy", "prescription", "fill", "allergy", "diagnosis", "coverage", "labresult",
        "encounter", "refill-request", "pa-case", "inbound-message", "outbox",
        "reconciliation-task", "discrepancy"}  # the last two: staff roles only (tests/test_security_matrix.py)
    assert not missing, f"new API endpoints without a two-partner check: {sorted(missing)}"


def test_two_integrators_see_and_touch_only_their_own(world):
    from pharmacy.models import Prescription

    checked = 0
    for me, other in (("A", "B"), ("B", "A")):
        client = _client(world[me]["integrator"])
        mine, theirs = world[me]["objects"], world[other]["objects"]
        for basename, action, method, url, detail in _endpoints():
            if basename in SHARED or basename not in mine:
                continue
            if not detail:
                if action != "list":
                    continue
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                ids = _row_ids(response)
                assert mine[basename].pk in ids, f"{me} does not see its own {basename}"
                assert theirs[basename].pk not in ids, f"{me} lists {other}'s {basename}"
                checked += 1
                continue
            before = type(theirs[basename]).objects.filter(pk=theirs[basename].pk).values().get()
            call = getattr(client, method)
            response = call(url.format(pk=theirs[basename].pk), {}, format="json")
            assert response.status_code in (403, 404), (me, method, url, response.status_code)
            after = type(theirs[basename]).objects.filter(pk=theirs[basename].pk).values().get()
            assert before == after, f"{me} changed {other}'s {basename} through {method} {url}"
            own = call(url.format(pk=mine[basename].pk), {}, format="json")
            assert own.status_code != 404, (me, method, url, "own object not found")
            checked += 2
    assert checked > 60
    # Nothing of B's moved: its prescription still at its own pharmacy.
    assert Prescription.objects.get(pk=world["B"]["objects"]["prescription"].pk).pharmacy == \
        world["B"]["objects"]["pharmacy"]


def test_two_payer_accounts_see_only_their_payers_cases_both_directions(world):
    for me, other in (("A", "B"), ("B", "A")):
        client = _client(world[me]["payer_account"])
        mine, theirs = world[me]["objects"]["pa-case"], world[other]["objects"]["pa-case"]
        assert _row_ids(client.get("/api/v1/pa-cases/")) == {mine.pk}
        assert client.get(f"/api/v1/pa-cases/{theirs.pk}/").status_code == 404
        assert client.get(f"/api/v1/pa-cases/{mine.pk}/").status_code == 200
        # A payer account reads no pharmacy's patients or prescriptions.
        assert _row_ids(client.get("/api/v1/patients/")) == set()
        assert _row_ids(client.get("/api/v1/prescriptions/")) == set()


def test_a_payer_account_cannot_answer_another_payers_case(world):
    from priorauth.models import PAResponse

    theirs = world["B"]["objects"]["pa-case"]
    status_before = theirs.status
    for account in (world["A"]["payer_account"], world["A"]["integrator"]):  # and a pharmacy's account
        response = _client(account).post("/api/v1/pa-responses/", {"case": theirs.pk, "decision": "approved",
                                                                   "authorization_number": "X1"}, format="json")
        assert response.status_code == 400 and "case" in response.json()["errors"]
    theirs.refresh_from_db()
    assert theirs.status == status_before
    assert PAResponse.objects.filter(case=theirs).count() == 0
    assert PAResponse.objects.filter(case=None, is_malformed=True).count() == 2  # stored first, attached to none


def test_writes_point_only_at_own_records(world):
    client = _client(world["A"]["integrator"])
    b = world["B"]["objects"]
    a = world["A"]["objects"]
    refused = [
        client.patch(f"/api/v1/prescriptions/{a['prescription'].pk}/", {"pharmacy": b["pharmacy"].pk}, format="json"),
        client.post("/api/v1/allergies/", {"patient": b["patient"].pk, "substance": "penicillin"}, format="json"),
        client.post("/api/v1/refill-requests/", {"prescription": b["prescription"].pk}, format="json"),
        client.post("/api/v1/patients/", {"mrn": "NEW-1", "first_name": "N", "last_name": "N",
                                          "birth_date": "1970-01-01", "sex": "F"}, format="json"),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 400], [r.json() for r in refused]
    assert client.post("/api/v1/pharmacies/", {"ncpdp_id": "1234567", "name": "X"}, format="json").status_code == 403


def test_outbound_endpoint_is_admin_only(world, make_user):
    pharmacy = world["A"]["objects"]["pharmacy"]
    response = _client(world["A"]["integrator"]).patch(
        f"/api/v1/pharmacies/{pharmacy.pk}/",
        {"outbound_transport": "http", "outbound_endpoint": "https://attacker.example/ncpdp", "phone": "6175550100"},
        format="json")
    assert response.status_code == 200
    pharmacy.refresh_from_db()
    assert pharmacy.outbound_endpoint == "" and pharmacy.outbound_transport != "http" and pharmacy.phone == "6175550100"
    admin = make_user("admin", is_staff=True)
    response = _client(admin).patch(f"/api/v1/pharmacies/{pharmacy.pk}/",
                                    {"outbound_transport": "http", "outbound_endpoint": "https://rx.example/ncpdp"},
                                    format="json")
    assert response.status_code == 200, response.json()
    pharmacy.refresh_from_db()
    assert pharmacy.outbound_endpoint == "https://rx.example/ncpdp"


def test_pharmacy_change_through_the_api_sends_cancelrx_and_records_why(world, make_user):
    from pharmacy.models import OutboxMessage

    rx = world["A"]["objects"]["prescription"]
    old, new = rx.pharmacy, PharmacyFactory(name="New pharmacy")
    response = _client(make_user("pharmacist")).patch(f"/api/v1/prescriptions/{rx.pk}/", {"pharmacy": new.pk},
                                                      format="json")
    assert response.status_code == 200, response.json()
    rx.refresh_from_db()
    assert rx.pharmacy == new
    cancel = OutboxMessage.objects.get(kind="ncpdp:CancelRx", related_id=str(rx.pk))
    assert old.ncpdp_id in cancel.payload and "<CancelRx>" in cancel.payload
    assert "Moved to New pharmacy" in rx.history.first().history_change_reason


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"status": "completed"}, 200, None),
    ({"status": "bogus"}, 400, "validation_error"),
    ({"refills_remaining": 2}, 200, None),
    ({"refills_remaining": 3}, 200, None),  # unchanged: no-op
    ({"refills_remaining": 9}, 400, "validation_error"),  # the model's own constraint answers first
])
def test_prescription_status_and_refills_through_the_service(world, change, status, code):
    rx = world["A"]["objects"]["prescription"]
    response = _client(world["A"]["integrator"]).patch(f"/api/v1/prescriptions/{rx.pk}/", change, format="json")
    assert response.status_code == status, response.json()
    if code:
        assert response.json()["code"] == code


def test_status_transition_is_checked_and_refills_only_go_down_for_a_partner(world):
    rx = world["A"]["objects"]["prescription"]
    client = _client(world["A"]["integrator"])
    assert client.patch(f"/api/v1/prescriptions/{rx.pk}/", {"refills_remaining": 1}, format="json").status_code == 200
    up = client.patch(f"/api/v1/prescriptions/{rx.pk}/", {"refills_remaining": 2}, format="json")
    assert up.status_code == 409 and up.json()["code"] == "refills_increase_not_allowed"
    assert client.patch(f"/api/v1/prescriptions/{rx.pk}/", {"status": "discontinued"}, format="json").status_code == 200
    back = client.patch(f"/api/v1/prescriptions/{rx.pk}/", {"status": "active"}, format="json")
    assert back.status_code == 409 and back.json()["code"] == "transition_not_allowed"
    rx.refresh_from_db()
    assert (rx.status, rx.refills_remaining) == ("discontinued", 1)
    assert "status active → discontinued" in rx.history.first().history_change_reason
    assert Decimal(rx.quantity) > 0


def test_prescribers_are_shared_reference_data_integrators_read_but_never_write(world, make_user):
    """A prescriber row serves every pharmacy: no integrator (bound to any pharmacy) rewrites its
    NPI, DEA number or name; pharmacists and admins do."""
    from pharmacy.models import Prescriber
    from tests.factories import PrescriberFactory, valid_npi

    prescriber = PrescriberFactory(last_name="Shared")
    before = Prescriber.objects.filter(pk=prescriber.pk).values().get()
    count = Prescriber.objects.count()
    url = f"/api/v1/prescribers/{prescriber.pk}/"
    for label in SIDES:
        client = _client(world[label]["integrator"])
        assert client.get(url).status_code == 200
        assert prescriber.pk in _row_ids(client.get("/api/v1/prescribers/", {"last_name": "Shared"}))
        answers = [client.patch(url, {"npi": valid_npi(77), "last_name": "Forged"}, format="json"),
                   client.put(url, {**{k: v for k, v in before.items() if k in ("first_name", "npi")},
                                    "last_name": "Forged"}, format="json"),
                   client.post("/api/v1/prescribers/", {"first_name": "New", "last_name": "Doc",
                                                        "npi": valid_npi(78)}, format="json")]
        assert [a.status_code for a in answers] == [403, 403, 403], [a.json() for a in answers]
        assert all(a.json()["code"] == "permission_denied" for a in answers), [a.json() for a in answers]
    assert Prescriber.objects.filter(pk=prescriber.pk).values().get() == before
    assert Prescriber.objects.count() == count
    changed = _client(make_user("pharmacist")).patch(url, {"phone": "6175550111"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert Prescriber.objects.get(pk=prescriber.pk).phone.replace("-", "") == "6175550111"


def test_prescriber_writes_document_their_403_in_the_schema(client):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path, method in (("/api/v1/prescribers/", "post"), ("/api/v1/prescribers/{id}/", "patch"),
                         ("/api/v1/prescribers/{id}/", "put")):
        forbidden = paths[path][method]["responses"]["403"]
        assert "only pharmacists and admins" in forbidden["description"], (path, method)
        assert forbidden["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "only pharmacists" not in paths["/api/v1/prescribers/"]["get"]["responses"]["403"]["description"]
