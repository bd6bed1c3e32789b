"""An active allergy conflict blocks approval on every path (issue 13 item 3); through the signed
link the request's prescriber may approve over it only with a reason, recorded in the decision and
its history; a protocol never overrides it."""
import pytest

from pharmacy.errors import DomainError
from refills import links, services
from refills.choices import LinkStatus, RefillStatus
from refills.models import PrescriberLink, RefillRequest
from refills.services._common import PROTOCOL
from tests.factories import AllergyFactory, DrugFactory, FillFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def _amoxicillin(**kwargs):
    rx = PrescriptionFactory(drug=DrugFactory(name="amoxicillin", strength="500 mg", dose_form="capsule",
                                              therapeutic_class="penicillin", is_maintenance=False),
                             sig="Take 1 capsule by mouth three times daily", quantity=30, days_supply=10,
                             **kwargs)
    AllergyFactory(patient=rx.patient, substance="Penicillin G", drug_class="", reaction="Hives")
    FillFactory(prescription=rx)
    return rx


@pytest.fixture
def allergic_renewal(make_request, pharmacist):
    rx = _amoxicillin(refills_authorized=1, refills_remaining=0)
    req = make_request(prescription=rx, kind="renewal")
    services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="Please renew")
    link = PrescriberLink.objects.get(request=req)
    return req, link, f"/refills/link/{links.link_token(link)}/"


@pytest.mark.parametrize("decision", [{"decision": "approve"},
                                      {"decision": "approve_with_changes", "quantity": "30", "days_supply": "10",
                                       "refills": "0"}])
def test_link_approval_over_an_allergy_needs_a_reason_then_records_it(client, allergic_renewal, decision):
    req, link, path = allergic_renewal
    page = client.get(path).content.decode()
    assert 'data-testid="allergy-override"' in page and "Penicillin G" in page
    refused = client.post(path, decision)
    assert refused.status_code == 200 and "Nothing was recorded yet" in refused.content.decode()
    assert "allergy" in refused.content.decode().lower()
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE
    assert RefillRequest.objects.get(pk=req.pk).status == RefillStatus.AWAITING_PRESCRIBER

    answered = client.post(path, {**decision, "override_reason": "Tolerated amoxicillin in 2024; rash only"})
    assert answered.status_code == 302
    req.refresh_from_db()
    assert req.status in (RefillStatus.APPROVED, RefillStatus.APPROVED_WITH_CHANGES)
    assert req.overridden_findings == ["allergy_conflict"]
    assert req.override_reason.startswith("Tolerated amoxicillin in 2024; rash only (")
    assert "via signed link" in req.override_reason
    reasons = list(req.history.values_list("history_change_reason", flat=True))
    assert any("overrode allergy_conflict: Tolerated amoxicillin in 2024" in (r or "") for r in reasons)


def test_a_link_page_without_an_allergy_conflict_asks_for_no_reason(client, make_request, pharmacist):
    rx = PrescriptionFactory(refills_authorized=1, refills_remaining=0)
    FillFactory(prescription=rx)
    req = make_request(prescription=rx, kind="renewal")
    services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="")
    token = links.link_token(PrescriberLink.objects.get(request=req))
    assert 'data-testid="allergy-override"' not in client.get(f"/refills/link/{token}/").content.decode()
    assert client.post(f"/refills/link/{token}/", {"decision": "approve"}).status_code == 302
    req.refresh_from_db()
    assert req.overridden_findings == [] and req.override_reason == ""


def test_a_protocol_never_overrides_an_allergy_conflict(make_request):
    rx = _amoxicillin(refills_authorized=3, refills_remaining=2)
    req = make_request(prescription=rx, kind="refill")
    with pytest.raises(DomainError) as refused:
        services.refill_request_approve(request_id=req.pk, actor=PROTOCOL, override_reason="protocol says so")
    assert refused.value.code == "not_eligible" and "allergy_conflict" in str(refused.value.errors)
    assert RefillRequest.objects.get(pk=req.pk).status == RefillStatus.NEEDS_REVIEW
