"""Drug utilization review before approval (issue 13 items 4 and 6) where people decide: the refill
request page, the prescriber link page (with its approve-with-changes form) and the refill API
detail show the high-priority interactions, therapeutic duplications and the sig / quantity
warning; a mismatched change through the link is shown before anything is recorded."""
from decimal import Decimal

import pytest

from pharmacy.models import Prescription
from refills import links, services
from refills.choices import LinkStatus, RefillStatus
from refills.models import PrescriberLink, RefillRequest
from tests.factories import DrugFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db
MISMATCH = "Quantity 90 does not match the sig for 30 days (30 expected at 1 a day)."


@pytest.fixture
def simvastatin_with_diltiazem(make_request):
    """Zocor once daily, 90 tablets for 30 days (a mismatch), with diltiazem (ONC pair 11) and a
    second statin (therapeutic duplication) active for the same patient."""
    rx = PrescriptionFactory(drug=DrugFactory(name="simvastatin", strength="40 mg", therapeutic_class="statin"),
                             quantity=Decimal("90.000"), days_supply=30, refills_authorized=5, refills_remaining=3)
    FillFactory(prescription=rx)
    PrescriptionFactory(patient=rx.patient, drug=DrugFactory(name="Cardizem CD", strength="180 mg",
                                                             therapeutic_class="calcium_channel_blocker"))
    PrescriptionFactory(patient=rx.patient, drug=DrugFactory(name="atorvastatin", strength="20 mg",
                                                             therapeutic_class="statin"))
    return make_request(prescription=rx)


def test_request_page_shows_interaction_duplication_and_quantity_warning(client, pharmacist,
                                                                         simvastatin_with_diltiazem):
    client.force_login(pharmacist)
    page = client.get(f"/refills/{simvastatin_with_diltiazem.pk}/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "simvastatin" in body and "Cardizem CD" in body and "HMG-CoA reductase inhibitors" in body
    assert [i.pair_id for i in page.context["interactions"]] == [11]
    assert [str(o.drug.name) for o in page.context["therapeutic_duplications"]] == ["atorvastatin"]
    assert page.context["quantity_warnings"] == [MISMATCH]
    assert MISMATCH in body and "9E+1" not in body
    assert MISMATCH in page.context["warnings"]  # the Approve key asks for a second press


def test_request_page_with_nothing_to_report_says_so(client, pharmacist, make_request):
    req = make_request()
    client.force_login(pharmacist)
    page = client.get(f"/refills/{req.pk}/")
    assert page.context["interactions"] == [] and page.context["therapeutic_duplications"] == []
    assert page.context["quantity_warnings"] == []
    assert "Quantity and days supply match the sig" in page.content.decode()


def test_api_detail_has_the_review_and_the_list_does_not(api_client_for, simvastatin_with_diltiazem):
    api = api_client_for("pharmacist")
    body = api.get(f"/api/v1/refill-requests/{simvastatin_with_diltiazem.pk}/").json()
    assert [(i["pair"], i["code"]) for i in body["interactions"]] == [(11, "drug_interaction")]
    assert "Cardizem CD" in body["interactions"][0]["other"] and "Phansalkar" in body["interactions"][0]["citation"]
    assert [d["therapeutic_class"] for d in body["therapeutic_duplications"]] == ["statin"]
    assert body["quantity_warnings"] == [MISMATCH]
    assert {"eligibility", "protocol_trace", "status"} <= set(body)  # existing fields kept
    listed = api.get("/api/v1/refill-requests/").json()["results"][0]
    assert not {"interactions", "therapeutic_duplications", "quantity_warnings"} & set(listed)


@pytest.fixture
def forwarded_renewal(make_request, pharmacist):
    rx = PrescriptionFactory(refills_authorized=3, refills_remaining=0,
                             drug=DrugFactory(name="simvastatin", strength="20 mg", therapeutic_class="statin"))
    FillFactory(prescription=rx)
    PrescriptionFactory(patient=rx.patient, drug=DrugFactory(name="clarithromycin", strength="500 mg",
                                                             therapeutic_class="macrolide"))
    req = make_request(prescription=rx, kind="renewal")
    services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="Please renew")
    link = PrescriberLink.objects.get(request=req)
    return req, link, f"/refills/link/{links.link_token(link)}/"


def test_link_page_shows_the_review(client, forwarded_renewal):
    req, link, path = forwarded_renewal
    page = client.get(path)
    body = page.content.decode()
    assert page.status_code == 200
    assert [i.pair_id for i in page.context["interactions"]] == [11] and "clarithromycin" in body
    assert page.context["therapeutic_duplications"] == [] and page.context["quantity_warnings"] == []
    assert 'data-testid="quantity-warnings"' in body and "Quantity and days supply match the sig" in body


def test_link_change_that_does_not_match_the_sig_is_shown_before_it_is_recorded(client, forwarded_renewal):
    req, link, path = forwarded_renewal
    change = {"decision": "approve_with_changes", "quantity": "60", "days_supply": "30", "refills": "2"}
    first = client.post(path, change)
    body = first.content.decode()
    assert first.status_code == 200 and "Nothing was recorded yet" in body
    assert "Quantity 60 does not match the sig for 30 days (30 expected at 1 a day)." in body
    assert 'name="confirm_quantity" value="1"' in body
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE
    assert RefillRequest.objects.get(pk=req.pk).status == RefillStatus.AWAITING_PRESCRIBER
    confirmed = client.post(path, {**change, "confirm_quantity": "1"})
    assert confirmed.status_code == 302
    req.refresh_from_db()
    assert req.status == RefillStatus.APPROVED_WITH_CHANGES
    assert req.changes["quantity"] == {"from": "30", "to": "60"}  # written plainly, never "6E+1"
    assert Prescription.objects.get(pk=req.prescription_id).quantity == Decimal("60")


def test_link_change_that_matches_the_sig_needs_no_second_send(client, forwarded_renewal):
    req, link, path = forwarded_renewal
    response = client.post(path, {"decision": "approve_with_changes", "quantity": "90", "days_supply": "90",
                                  "refills": "1"})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.status == RefillStatus.APPROVED_WITH_CHANGES and req.changes["quantity"] == {"from": "30", "to": "90"}
