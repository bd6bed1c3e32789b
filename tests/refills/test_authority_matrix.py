"""Roles × paths: a pharmacist cannot authorize a renewal without a collaborative practice agreement
on any path (queue page, bulk approve, REST API, protocol auto and assist), nor a Schedule II–V
renewal at all — with or without an agreement (21 CFR 1311: this system is not EPCS-certified)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from pharmacy.models import OutboxMessage
from refills import services
from refills.choices import RefillStatus
from refills.models import ProtocolRule, RefillRequest
from tests.factories import (
    AgreementFactory,
    CoverageFactory,
    DrugFactory,
    FillFactory,
    LabResultFactory,
    PrescriptionFactory,
)

pytestmark = pytest.mark.django_db
S = RefillStatus

# schedule → (drug, class). Statins are what the agreement covers; the controlled drugs' classes
# are added to the agreement too, to show that no agreement lifts 21 CFR 1311.
DRUGS = {
    "none": ("atorvastatin", "statin"),
    "2": ("oxycodone", "opioid_analgesic"),
    "3": ("testosterone cypionate", "testosterone"),
    "4": ("clonazepam", "benzodiazepine"),
    "5": ("pregabalin", "antiepileptic"),
}
PATHS = ("queue", "bulk", "api")


def _renewal_rx(schedule: str):
    name, cls = DRUGS[schedule]
    drug = DrugFactory(name=name, dea_schedule=schedule, therapeutic_class=cls)
    today = timezone.localdate()
    rx = PrescriptionFactory(drug=drug, refills_authorized=0 if schedule == "2" else 3, refills_remaining=0,
                             written_date=today - timedelta(days=100))
    for days_ago in (100, 70, 40):  # due now, not too soon
        FillFactory(prescription=rx, fill_date=today - timedelta(days=days_ago), days_supply=30)
    CoverageFactory(patient=rx.patient)
    return rx


def _agreement(rx, pharmacist):
    return AgreementFactory(prescriber=rx.prescriber, pharmacists=[pharmacist],
                            drug_classes=[cls for _name, cls in DRUGS.values()])


def _approve(path, req, pharmacist, client, api_client_for):
    if path == "queue":
        client.force_login(pharmacist)
        client.post(f"/refills/{req.pk}/approve/", {"note": "ok"})
    elif path == "bulk":
        client.force_login(pharmacist)
        client.post("/refills/bulk-approve/", {"ids": [str(req.pk)]})
    else:
        response = api_client_for(user=pharmacist).post(f"/api/v1/refill-requests/{req.pk}/approve/", {},
                                                          format="json")
        return response
    return None


def _authorizing_messages(req):
    return OutboxMessage.objects.filter(related_model="refills.refillrequest", related_id=str(req.pk),
                                        kind__in=["ncpdp:NewRx", "ncpdp:RxRenewalResponse"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("schedule", sorted(DRUGS))
@pytest.mark.parametrize("with_agreement", [False, True], ids=["no-agreement", "agreement"])
def test_pharmacist_renewal_matrix(path, schedule, with_agreement, make_request, pharmacist, client,
                                   api_client_for):
    rx = _renewal_rx(schedule)
    if with_agreement:
        _agreement(rx, pharmacist)
    # A stored "approve" suggestion (as bulk approve selects) must not be enough either.
    req = make_request(prescription=rx, kind="renewal", status=S.NEEDS_REVIEW, protocol_suggestion="approve")
    response = _approve(path, req, pharmacist, client, api_client_for)
    req.refresh_from_db()
    allowed = with_agreement and schedule == "none"
    if allowed:
        assert req.status == S.APPROVED, req.status
        assert req.agreement_id is not None and req.decided_by_id == pharmacist.pk
        assert _authorizing_messages(req).count() == 1
    else:
        assert req.status == S.NEEDS_REVIEW
        assert not _authorizing_messages(req).exists()
        if response is not None:
            assert response.status_code == 409
            assert response.json()["code"] == "prescriber_authorization_required"


def test_agreement_for_another_pharmacist_or_drug_or_expired_does_not_cover(make_request, pharmacist, make_user,
                                                                              api_client_for):
    rx = _renewal_rx("none")
    other = make_user("pharmacist")
    AgreementFactory(prescriber=rx.prescriber, pharmacists=[other])  # not this pharmacist
    AgreementFactory(prescriber=rx.prescriber, pharmacists=[pharmacist], drug_classes=["ace_inhibitor"])
    AgreementFactory(prescriber=rx.prescriber, pharmacists=[pharmacist],
                     effective_date=timezone.localdate() - timedelta(days=400),
                     end_date=timezone.localdate() - timedelta(days=1))
    req = make_request(prescription=rx, kind="renewal", status=S.NEEDS_REVIEW)
    response = api_client_for(user=pharmacist).post(f"/api/v1/refill-requests/{req.pk}/approve/", {},
                                                      format="json")
    assert response.status_code == 409 and response.json()["code"] == "prescriber_authorization_required"


def test_refill_of_schedule_iv_within_limits_stays_releasable(make_request, pharmacist, api_client_for):
    drug = DrugFactory(name="clonazepam", dea_schedule="4", therapeutic_class="benzodiazepine")
    today = timezone.localdate()
    rx = PrescriptionFactory(drug=drug, refills_authorized=2, refills_remaining=2,
                             written_date=today - timedelta(days=40))
    FillFactory(prescription=rx, fill_date=today - timedelta(days=28), days_supply=30)
    req = make_request(prescription=rx, kind="refill", status=S.NEEDS_REVIEW)
    response = api_client_for(user=pharmacist).post(f"/api/v1/refill-requests/{req.pk}/approve/", {},
                                                      format="json")
    assert response.status_code == 200, response.json()
    rx.refresh_from_db()
    assert rx.refills_remaining == 1


def _protocol_rule(mode, cls, *, agreement=None):
    return ProtocolRule.objects.create(
        name=f"{cls} {mode}", mode=mode, therapeutic_classes=[cls], require_maintenance=False,
        allow_controlled=True, allow_high_alert=True, min_therapy_months=0, max_months_since_visit=24,
        check_too_soon=True, agreement=agreement, source="test")


def _due_renewal_for_protocol(schedule):
    rx = _renewal_rx(schedule)
    rx.patient.last_visit_date = timezone.localdate() - timedelta(days=30)
    rx.patient.save(update_fields=["last_visit_date"])
    LabResultFactory(patient=rx.patient, loinc_code="2093-3", name="Cholesterol")
    return rx


@pytest.mark.parametrize("mode", ["auto", "assist"])
@pytest.mark.parametrize("schedule", sorted(DRUGS))
def test_protocol_cannot_authorize_a_renewal_without_naming_an_agreement(mode, schedule, pharmacist):
    rx = _due_renewal_for_protocol(schedule)
    _agreement(rx, pharmacist)  # exists, but the rule does not name it
    _protocol_rule(mode, DRUGS[schedule][1])
    req = services.refill_request_open(prescription=rx, actor=pharmacist, source="staff")
    assert req.kind == "renewal"
    assert req.status == S.NEEDS_REVIEW and req.protocol_suggestion != "approve"
    assert not _authorizing_messages(req).exists()


@pytest.mark.parametrize("schedule", ["2", "3", "4", "5"])
def test_protocol_naming_an_agreement_still_never_authorizes_controlled(schedule, pharmacist):
    rx = _due_renewal_for_protocol(schedule)
    agreement = _agreement(rx, pharmacist)
    _protocol_rule("auto", DRUGS[schedule][1], agreement=agreement)
    req = services.refill_request_open(prescription=rx, actor=pharmacist, source="staff")
    assert req.status == S.NEEDS_REVIEW and req.protocol_suggestion != "approve"
    assert not _authorizing_messages(req).exists()


@pytest.mark.parametrize("mode", ["auto", "assist"])
def test_protocol_naming_the_agreement_may_authorize_a_statin_renewal(mode, pharmacist):
    rx = _due_renewal_for_protocol("none")
    agreement = _agreement(rx, pharmacist)
    _protocol_rule(mode, "statin", agreement=agreement)
    req = services.refill_request_open(prescription=rx, actor=pharmacist, source="staff")
    trace = {c["name"]: c for c in req.protocol_trace}
    assert trace["authorized"]["passed"], trace
    if mode == "auto":
        req = RefillRequest.objects.get(pk=req.pk)
        assert req.status in (S.AUTO_APPROVED, S.SENT_TO_PHARMACY) and req.agreement_id == agreement.pk
        message = _authorizing_messages(req).get()
        assert f"CPA #{agreement.pk}" in message.payload
    else:
        assert req.status == S.NEEDS_REVIEW and req.protocol_suggestion == "approve"


def test_therapeutic_duplication_stops_the_protocol(pharmacist):
    rx = _due_renewal_for_protocol("none")
    agreement = _agreement(rx, pharmacist)
    _protocol_rule("auto", "statin", agreement=agreement)
    PrescriptionFactory(patient=rx.patient, prescriber=rx.prescriber,
                        drug=DrugFactory(name="rosuvastatin", therapeutic_class="statin"))
    req = services.refill_request_open(prescription=rx, actor=pharmacist, source="staff")
    trace = {c["name"]: c for c in req.protocol_trace}
    assert req.status == S.NEEDS_REVIEW and not trace["no_therapeutic_duplication"]["passed"]
    assert "rosuvastatin" in trace["no_therapeutic_duplication"]["detail"]
    assert not _authorizing_messages(req).exists()


@pytest.mark.parametrize(("mode", "interacting"), [("auto", False), ("auto", True), ("assist", True)])
def test_high_priority_interaction_stops_the_protocol_and_shows_on_both_pages(mode, interacting, pharmacist,
                                                                                 client):
    # Issue 13 item 6: ONC high-priority DDI (Phansalkar et al., JAMIA 2012), here SSRI + MAO inhibitor.
    from refills import links
    from refills.models import PrescriberLink

    drug = DrugFactory(name="sertraline", therapeutic_class="ssri")
    today = timezone.localdate()
    rx = PrescriptionFactory(drug=drug, refills_authorized=3, refills_remaining=0,
                             written_date=today - timedelta(days=100))
    for days_ago in (100, 70, 40):
        FillFactory(prescription=rx, fill_date=today - timedelta(days=days_ago), days_supply=30)
    CoverageFactory(patient=rx.patient)
    rx.patient.last_visit_date = today - timedelta(days=30)
    rx.patient.save(update_fields=["last_visit_date"])
    agreement = AgreementFactory(prescriber=rx.prescriber, pharmacists=[pharmacist], drug_classes=["ssri"])
    _protocol_rule(mode, "ssri", agreement=agreement)
    if interacting:
        PrescriptionFactory(patient=rx.patient, drug=DrugFactory(name="phenelzine", therapeutic_class="maoi"))
    req = services.refill_request_open(prescription=rx, actor=pharmacist, source="staff")
    trace = {c["name"]: c for c in req.protocol_trace}
    if not interacting:  # the same request without the other drug: the protocol authorizes it
        assert req.status != S.NEEDS_REVIEW and trace["no_high_priority_interaction"]["passed"]
        assert _authorizing_messages(req).exists()
        return
    assert req.status == S.NEEDS_REVIEW and req.protocol_suggestion != "approve"
    assert not trace["no_high_priority_interaction"]["passed"]
    assert "phenelzine" in trace["no_high_priority_interaction"]["detail"]
    assert not _authorizing_messages(req).exists()
    client.force_login(pharmacist)
    page = client.get(f"/refills/{req.pk}/").content.decode()
    assert "High-priority interaction: sertraline (Selective serotonin" in page and "Phansalkar" in page
    services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="Interaction: please review")
    client.logout()
    token = links.link_token(PrescriberLink.objects.get(request=req))
    link_page = client.get(f"/refills/link/{token}/").content.decode()
    assert "with phenelzine (MAO inhibitors)" in link_page and "Phansalkar" in link_page
