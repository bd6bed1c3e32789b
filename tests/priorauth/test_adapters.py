"""Both payer adapters' payloads and answers: the ePA XML is well-formed with the header fields
(NCPDP SCRIPT 2017071 envelope, STANDARDS.md); the PAS Bundle validates with fhir.resources'
R4-line models (R4B package); responses of every kind read back, malformed ones refused. Also
the optional language-model drafter against a real HTTP double."""

import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim

from pharmacy.interop import ncpdp, pas
from priorauth import adapters, services
from priorauth.drafting import CITATION, LanguageModelDrafter, keep_cited_sentences
from tests.interop import ncpdp_variants as variants

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(pa_rx, make_criteria, pharmacist):
    make_criteria()
    return services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)


def test_epa_initiation_is_well_formed_with_header_fields(case):
    out = adapters.EpaAdapter().submission(case)
    root = ET.fromstring(out.payload)  # well-formed
    assert root.tag == "Message"
    for attr, value in ncpdp.ENVELOPE_ATTRIBUTES.items():
        assert root.get(attr) == value
    header = root.find("Header")
    assert header.find("To").get("Qualifier") == "PY" and header.find("To").text == "610014"
    assert header.find("From").get("Qualifier") == "P"
    assert header.find("From").text == case.prescription.pharmacy.ncpdp_id
    assert header.find("MessageID").text == out.message_id and len(out.message_id) <= 35
    assert header.find("SentTime").text.endswith("Z")
    assert header.find("SenderSoftware/SenderSoftwareProduct").text
    assert header.find("RxReferenceNumber").text == "RX7001"
    tx = root.find("Body/PAInitiationRequest")
    assert tx.find("MedicationPrescribed/DrugCoded/ProductCode/Code").text == "00169413013"
    assert tx.find("Patient/HumanPatient/Name/LastName").text == case.patient.last_name
    parsed = ncpdp.parse_message(out.payload)  # our own reader accepts it
    assert parsed.transaction == "PAInitiationRequest" and parsed.pa_reference_id == f"RXHUB-PA-{case.pk}"


def test_epa_request_carries_answers_and_letter_attachment(case):
    case.payer_case_id = "PY-1"
    out = adapters.EpaAdapter().answers(case, {"Q1": "E11.9", "Q2": "metformin 120 days"})
    parsed = ncpdp.parse_message(out.payload)
    assert parsed.transaction == "PARequest" and parsed.pa_case_id == "PY-1"
    assert parsed.answers == [("Q1", "E11.9"), ("Q2", "metformin 120 days")]
    # 2017071 attachments are PDF/images only: the letter travels as the question set's comment
    # (printable ASCII on one line: the schema's text pattern has no line breaks)
    assert parsed.note == ncpdp.values.ascii_text(case.letter)[:2000] and case.letter  # "—" → "-"


PA_PARTIES = {"patient": variants.PATIENT, "prescriber": variants.PRESCRIBER, "medication": variants.MED}


def _header():
    return ncpdp.Header(to=ncpdp.Party("P", "1000001"), from_=ncpdp.Party("PY", "610014"), message_id="M1")


@pytest.mark.parametrize(
    ("builder", "kwargs", "decision"),
    [
        (
            ncpdp.build_pa_response,
            {
                "status": "Approved",
                "authorization_number": "A-1",
                "effective_date": date(2026, 12, 1),
                "expiration_date": date(2027, 5, 31),
            },
            "approved",
        ),
        (
            ncpdp.build_pa_response,
            {"status": "Denied", "denial_reasons": ["Not medically necessary"]},
            "denied",
        ),
        (
            ncpdp.build_pa_response,
            {"status": "InProcess", "expected_response_date": date(2026, 12, 3)},
            "pended",
        ),
        (
            ncpdp.build_pa_response,
            {"status": "Open", "question_set": [ncpdp.PAQuestion("Q1", "HbA1c value?")],
             "deadline_for_reply": date(2026, 12, 5)},
            "pended",
        ),
        (ncpdp.build_pa_response, {"status": "Closed", "reason_codes": ["CE"], "note": "Duplicate request"},
         "closed"),
        (
            ncpdp.build_pa_initiation_response,
            {"status": "Open", "question_set": [ncpdp.PAQuestion("Q1", "Diagnosis?")],
             "deadline_for_reply": date(2026, 12, 5)},
            "pended",
        ),
        (ncpdp.build_pa_appeal_response, {"status": "Denied", "denial_reasons": ["Upheld"]}, "denied"),
    ],
)
def test_epa_reads_each_response_kind(builder, kwargs, decision):
    xml = builder(header=_header(), pa_case_id="PY-5", relates_to_message_id="REQ1", pa_reference_id="REF-1",
                  **PA_PARTIES, **kwargs)
    parsed = adapters.EpaAdapter().parse(xml)
    assert parsed.decision == decision and parsed.payer_case_id == "PY-5"
    if decision == "approved":
        assert (parsed.authorization_number, parsed.expiration_date) == ("A-1", date(2027, 5, 31))
    if kwargs.get("question_set"):
        assert parsed.questions[0]["id"] == "Q1"


@pytest.mark.parametrize(
    "text",
    [
        "not xml",
        "<Message><Header/></Message>",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><Message/>",
        ncpdp.build_status(header=_header(), relates_to_message_id="R1", code="010"),  # not a PA response
    ],
)
def test_epa_refuses_malformed_or_foreign_answers(text):
    with pytest.raises(adapters.AdapterError):
        adapters.EpaAdapter().parse(text)


def test_pas_bundle_validates_with_fhir_resources(pa_rx, make_criteria, pharmacist):
    make_criteria(benefit="medical")
    case = services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)
    assert case.adapter == "pas"
    out = adapters.PasAdapter().submission(case)
    data = json.loads(out.payload)
    bundle = Bundle.model_validate(data)
    claim = bundle.entry[0].resource
    assert isinstance(claim, Claim) and claim.use == "preauthorization"
    assert claim.item[0].productOrService.coding[0].code == "00169413013"
    assert claim.diagnosis[0].diagnosisCodeableConcept.coding[0].code == "E11.9"
    assert claim.supportingInfo[0].valueString == case.letter
    kinds = [e.resource.__resource_type__ for e in bundle.entry]
    assert kinds == ["Claim", "Patient", "Practitioner", "Organization", "Coverage"]
    assert out.content_type == "application/fhir+json"


@pytest.mark.parametrize(("code", "decision"), [("A1", "approved"), ("A3", "denied"), ("A4", "pended")])
def test_pas_reads_review_action_codes(code, decision):
    bundle = pas.build_claim_response(
        code=code,
        authorization_number="PA-77" if code == "A1" else "",
        start=date(2026, 12, 1),
        end=date(2027, 11, 30),
        reason="Step therapy not met" if code == "A3" else "",
    )
    Bundle.model_validate(bundle)
    parsed = adapters.PasAdapter().parse(json.dumps(bundle))
    assert parsed.decision == decision
    if code == "A1":
        assert parsed.authorization_number == "PA-77" and parsed.expiration_date == date(2027, 11, 30)
    if code == "A3":
        assert parsed.reasons == ["Step therapy not met"]


@pytest.mark.parametrize(
    "text",
    [
        "{",
        json.dumps({"resourceType": "Patient"}),
        json.dumps({"resourceType": "Bundle", "entry": []}),
        json.dumps(pas.build_claim_response(code="ZZ")),
        json.dumps(pas.build_claim_response(code="A1")),  # no number
    ],
)
def test_pas_refuses_malformed_answers(text):
    with pytest.raises(adapters.AdapterError):
        adapters.PasAdapter().parse(text)


def test_pas_delivery_answer_is_applied(
    pa_rx, make_criteria, pharmacist, payer, settings, http_receiver, django_capture_on_commit_callbacks
):
    """A PAS payer answers $submit synchronously with a ClaimResponse Bundle."""
    payer.endpoint_key = "med"
    payer.save()
    settings.RXHUB = {**settings.RXHUB, "PAYERS": {"med": {"submit_url": http_receiver.url + "/fhir"}}}
    make_criteria(benefit="medical")
    case = services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)
    http_receiver.reply(200, json.dumps(pas.build_claim_response(code="A4")), "application/fhir+json")
    with django_capture_on_commit_callbacks(execute=True):
        services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    assert http_receiver.requests[0]["path"] == "/fhir/Claim/$submit"
    assert http_receiver.requests[0]["headers"]["content-type"] == "application/fhir+json"
    case.refresh_from_db()
    assert case.status == "pended" and case.responses.get().source == "delivery"


# --- optional language-model drafter -------------------------------------------------------------------


def test_keep_cited_sentences_drops_uncited_and_invented_ids():
    text = "Has diabetes [dx:1]. Tried metformin [therapy:9]. Also failed insulin [therapy:404]. Trust me."
    assert keep_cited_sentences(text, {"dx:1", "therapy:9"}) == [
        "Has diabetes [dx:1].",
        "Tried metformin [therapy:9].",
    ]


def test_language_model_drafter_keeps_only_cited_sentences(case, http_receiver):
    ids = [e["id"] for e in case.evidence if e["kind"] in ("diagnosis", "therapy")]
    narrative = (f"The patient has type 2 diabetes [{ids[0]}]. Metformin was tried [{ids[1]}]. "
                 "She also failed insulin [therapy:999].")
    http_receiver.reply(
        200, json.dumps({"choices": [{"message": {"content": narrative}}]}), "application/json"
    )
    drafter = LanguageModelDrafter(url=http_receiver.url + "/v1", model="local-test", token="t0k")
    draft = drafter.draft(
        facts={"drug": "semaglutide"}, evidence=case.evidence, criteria=case.criteria_result
    )
    request = http_receiver.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["headers"]["authorization"] == "Bearer t0k"
    assert json.loads(request["body"])["model"] == "local-test"
    assert draft.drafter == "language-model:local-test"
    assert "insulin" not in draft.letter and "Metformin was tried" in draft.letter
    assert set(CITATION.findall(draft.letter)) <= {e["id"] for e in case.evidence}


def test_language_model_drafter_falls_back_when_unreachable(case, http_receiver):
    http_receiver.fail_next(1, 500)
    draft = LanguageModelDrafter(url=http_receiver.url, model="m").draft(
        facts={"drug": "x"}, evidence=case.evidence, criteria=case.criteria_result
    )
    assert draft.drafter.startswith("template") and draft.letter


def test_drafter_is_off_by_default(settings):
    from priorauth import conf
    from priorauth.drafting import TemplateDrafter

    settings.RXHUB = {k: v for k, v in settings.RXHUB.items() if k != "PA_DRAFTER"}
    assert isinstance(conf.drafter(), TemplateDrafter) and not isinstance(
        conf.drafter(), LanguageModelDrafter
    )
