"""PA case lifecycle through the services: open (evidence, criteria, draft), rollout modes,
submission (outbox, deadline), responses, appeal, expiry renewal, role rules."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pharmacy.actors import system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.models import OutboxMessage
from priorauth import services
from priorauth.drafting import CITATION
from priorauth.models import PACase, PAResponse, PrescriptionAuthorization

pytestmark = pytest.mark.django_db


def _open(rx, actor):
    return services.pa_case_open(prescription_id=rx.pk, actor=actor)


def test_open_gathers_evidence_checks_criteria_and_drafts(pa_rx, make_criteria, pharmacist):
    make_criteria()
    case = _open(pa_rx, pharmacist)
    assert case.status == "ready_for_review"
    kinds = {e["kind"] for e in case.evidence}
    assert {
        "patient",
        "medication",
        "prescriber",
        "coverage",
        "indication",
        "diagnosis",
        "therapy",
        "lab",
    } <= kinds
    therapy = next(e for e in case.evidence if e["kind"] == "therapy")
    assert therapy["data"]["drug_name"] == "metformin" and therapy["data"]["days"] == 120
    assert all(e["source"] for e in case.evidence)
    assert case.criteria_result["all_met"] is True
    assert case.letter == case.system_letter and "semaglutide" in case.letter
    assert case.fields["member_id"] and case.fields["diagnosis_codes"].startswith("E11.9")
    assert case.history.filter(history_change_reason__startswith="Evidence gathered").exists()
    assert PrescriptionAuthorization.objects.get(prescription=pa_rx).status == "ready_for_review"


def test_letter_cites_only_gathered_evidence(pa_rx, make_criteria, pharmacist):
    make_criteria()
    case = _open(pa_rx, pharmacist)
    evidence = {e["id"]: e for e in case.evidence}
    lines = case.letter.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("each with the record it comes from:"))
    body = [line for line in lines[start + 1 :] if line.startswith("- ")]
    assert len(body) == len([s for s in case.system_statements if "text" in s]) >= 5
    for line in body:  # every statement cites, and only what was gathered
        cited = CITATION.findall(line)
        assert cited and set(cited) <= set(evidence), line
    # a statement about a record repeats that record's own text
    for statement in case.system_statements:
        if "text" in statement and not statement["text"].startswith("Criterion met"):
            source = evidence[statement["sources"][0]]
            if source["kind"] in ("diagnosis", "therapy", "lab"):
                assert source["text"] in statement["text"]
    # fields name their evidence too
    field_sources = {s["field"]: s["sources"] for s in case.system_statements if "field" in s}
    assert field_sources["member_id"] == [f"coverage:{case.coverage_id}"]
    assert all(set(v) <= set(evidence) for v in field_sources.values())


def test_letter_says_nothing_about_records_that_do_not_exist(pa_rx, make_criteria, pharmacist):
    pa_rx.patient.lab_results.all().delete()
    from pharmacy.models import Fill

    Fill.objects.filter(prescription__patient=pa_rx.patient).delete()
    make_criteria()
    case = _open(pa_rx, pharmacist)
    assert not [e for e in case.evidence if e["kind"] in ("lab", "therapy")]
    assert "Prior therapy" not in case.letter and "Recent result" not in case.letter
    assert "No fills of metformin found" in case.letter and "No HbA1c result on file" in case.letter


def test_letter_lists_missing_items_when_evidence_is_absent(pa_rx, make_criteria, pharmacist):
    make_criteria(required_labs=[{"name": "eGFR", "loinc_codes": ["33914-3"], "max_age_days": 365}])
    case = _open(pa_rx, pharmacist)
    assert any("eGFR" in m for m in case.missing)
    assert "Still to be provided" in case.letter
    assert "eGFR" not in " ".join(e["text"] for e in case.evidence)


def test_second_open_case_for_one_prescription_is_refused(pa_rx, pharmacist):
    _open(pa_rx, pharmacist)
    with pytest.raises(DomainError, match="already has an open PA case"):
        _open(pa_rx, pharmacist)


def test_prescriber_cannot_open_a_case(pa_rx, make_user):
    with pytest.raises(PermissionDenied):
        _open(pa_rx, make_user("prescriber"))


# --- submission and roles ---------------------------------------------------------------------------


def test_technician_prepares_but_cannot_approve_submission(pa_rx, make_criteria, technician):
    make_criteria()
    case = _open(pa_rx, technician)
    services.pa_case_edit(case_id=case.pk, actor=technician, letter=case.letter + "\nPrepared by tech.")
    with pytest.raises(PermissionDenied):
        services.pa_case_submit(case_id=case.pk, actor=technician)
    case.refresh_from_db()
    assert case.status == "ready_for_review" and "Prepared by tech." in case.letter
    assert case.history.filter(history_change_reason="Edited: letter", history_user=technician).exists()


def test_pharmacist_submits_epa_through_outbox_with_deadline(
    pa_rx, make_criteria, pharmacist, django_capture_on_commit_callbacks
):
    make_criteria()
    case = _open(pa_rx, pharmacist)
    with django_capture_on_commit_callbacks(execute=True):
        services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    case.refresh_from_db()
    assert case.status == "submitted" and case.submitted_by == pharmacist and not case.submitted_automatically
    assert case.decision_due_at == case.submitted_at + timedelta(hours=72)  # 42 CFR 423.568 standard
    sub = case.submissions.get()
    message = OutboxMessage.objects.get(pk=sub.outbox_id)
    assert message.kind == "ncpdp:PAInitiationRequest" and message.transport == "file"
    assert message.status == "sent"  # delivered to the file outbox after commit
    assert "<PAInitiationRequest>" in message.payload
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(kind="pa.submitted", subject_id=str(case.pk)).exists()


def test_submit_without_letter_is_refused(pa_rx, make_criteria, pharmacist):
    make_criteria(rollout_mode="shadow")
    case = _open(pa_rx, pharmacist)
    assert case.letter == ""
    with pytest.raises(ValidationError):
        services.pa_case_submit(case_id=case.pk, actor=pharmacist)


def test_payer_endpoint_from_settings_sends_http_with_token_env(
    pa_rx,
    make_criteria,
    pharmacist,
    settings,
    payer,
    http_receiver,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    payer.endpoint_key = "blueharbor"
    payer.save()
    settings.RXHUB = {
        **settings.RXHUB,
        "PAYERS": {"blueharbor": {"submit_url": http_receiver.url + "/epa", "token_env": "BH_TOKEN"}},
    }
    monkeypatch.setenv("BH_TOKEN", "s3cret")
    make_criteria()
    case = _open(pa_rx, pharmacist)
    with django_capture_on_commit_callbacks(execute=True):
        services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    assert http_receiver.requests[0]["path"] == "/epa"
    assert http_receiver.requests[0]["headers"]["authorization"] == "Bearer s3cret"
    message = OutboxMessage.objects.get(related_model="priorauth.pacase", related_id=str(case.pk))
    assert message.credentials_env == "BH_TOKEN" and "s3cret" not in str(message.__dict__)
    assert not PACase.history.filter(letter__contains="s3cret").exists()


# --- rollout modes ------------------------------------------------------------------------------------


def test_shadow_mode_hides_draft_and_records_agreement(pa_rx, make_criteria, pharmacist):
    make_criteria(rollout_mode="shadow")
    case = _open(pa_rx, pharmacist)
    assert case.system_letter and case.letter == "" and case.fields == {}
    assert not case.draft_visible
    typed = "To whom it may concern: the patient has type 2 diabetes and failed metformin."
    services.pa_case_submit(
        case_id=case.pk, actor=pharmacist, letter=typed, fields={**case.system_fields, "quantity": "4"}
    )
    case.refresh_from_db()
    agreement = case.agreement
    assert agreement["mode"] == "shadow"
    assert agreement["fields_differ"] == ["quantity"]
    assert agreement["fields_equal"] == agreement["fields_total"] - 1
    assert 0 < agreement["letter_similarity"] < 0.6


def test_assist_mode_shows_draft_and_waits_for_pharmacist(pa_rx, make_criteria, pharmacist):
    make_criteria(rollout_mode="assist")
    case = _open(pa_rx, pharmacist)
    assert case.draft_visible and case.letter == case.system_letter
    assert case.status == "ready_for_review" and not case.submissions.exists()
    services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    case.refresh_from_db()
    assert case.agreement["letter_similarity"] == 1.0 and case.agreement["field_agreement"] == 1.0


def test_auto_mode_submits_when_every_criterion_is_met(pa_rx, make_criteria, technician):
    make_criteria(rollout_mode="auto")
    case = _open(pa_rx, technician)
    assert case.status == "submitted" and case.submitted_automatically
    assert all(t["passed"] for t in case.auto_trace)
    assert case.submitted_by.username == "system:pa-rollout"
    assert case.history.filter(
        history_user__username="system:pa-rollout",
        history_change_reason__startswith="Submitted automatically",
    ).exists()


def test_auto_mode_sends_partial_case_to_the_queue(pa_rx, make_criteria, pharmacist):
    make_criteria(
        rollout_mode="auto", step_therapy=[{"label": "metformin", "drugs": ["metformin"], "min_days": 180}]
    )
    case = _open(pa_rx, pharmacist)
    assert case.status == "ready_for_review" and not case.submitted_automatically
    failed = [t["rule"] for t in case.auto_trace if not t["passed"]]
    assert failed == ["Every criterion met", "Nothing missing"]
    assert "needs a pharmacist" in case.attention


def test_auto_mode_without_criteria_never_submits(pa_rx, pharmacist, payer):
    case = _open(pa_rx, pharmacist)
    assert case.rollout_mode == "assist" and case.status == "ready_for_review"


def test_off_mode_makes_no_draft(pa_rx, make_criteria, pharmacist):
    make_criteria(rollout_mode="off")
    case = _open(pa_rx, pharmacist)
    assert case.system_letter == "" and case.letter == "" and case.criteria_result["all_met"] is True


# --- responses ------------------------------------------------------------------------------------------


@pytest.fixture
def submitted_case(pa_rx, make_criteria, pharmacist):
    make_criteria()
    case = _open(pa_rx, pharmacist)
    services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    case.refresh_from_db()
    return case


def _push(case, **data):
    data = {"case": case.pk, **data}
    return services.pa_response_receive(case_id=case.pk, data=data, raw=str(data))


def test_approved_response_closes_case_and_updates_prescription(submitted_case):
    today = timezone.localdate()
    response = _push(
        submitted_case,
        decision="approved",
        authorization_number="PA-123",
        effective_date=today.isoformat(),
        expiration_date=(today + timedelta(days=365)).isoformat(),
    )
    case = PACase.objects.get(pk=submitted_case.pk)
    assert response.applied and case.status == "approved" and case.authorization_number == "PA-123"
    status = PrescriptionAuthorization.objects.get(prescription=case.prescription)
    assert (status.status, status.authorization_number) == ("approved", "PA-123")
    assert case.attention.startswith("Approved")
    assert OutboxMessage.objects.filter(kind="sms:pa-approved", related_id=str(case.pk)).exists()


def test_no_patient_message_without_consent(submitted_case):
    patient = submitted_case.patient
    patient.consent_to_messages = False
    patient.save()
    today = timezone.localdate()
    _push(
        submitted_case,
        decision="approved",
        authorization_number="PA-9",
        effective_date=today.isoformat(),
        expiration_date=(today + timedelta(days=30)).isoformat(),
    )
    assert not OutboxMessage.objects.filter(kind__startswith="sms:").exists()


def test_denied_response_drafts_appeal_and_appeal_is_sent(submitted_case, pharmacist, technician):
    _push(submitted_case, decision="denied", reasons=["Step therapy with two agents required"])
    case = PACase.objects.get(pk=submitted_case.pk)
    assert case.status == "denied" and case.denial_reasons == ["Step therapy with two agents required"]
    assert "Step therapy with two agents required" in case.appeal_letter
    assert set(CITATION.findall(case.appeal_letter)) <= {e["id"] for e in case.evidence}
    with pytest.raises(PermissionDenied):
        services.pa_case_appeal(case_id=case.pk, actor=technician)
    services.pa_case_appeal(case_id=case.pk, actor=pharmacist)
    case.refresh_from_db()
    assert case.status == "appealed"
    assert case.submissions.filter(kind="appeal").exists()
    assert "<PAAppealRequest>" in case.submissions.get(kind="appeal").outbox.payload


def test_pended_response_stores_questions_and_answers_go_out(submitted_case, pharmacist):
    _push(
        submitted_case,
        decision="pended",
        questions=[{"id": "Q1", "text": "Which diagnosis (ICD-10)?"}],
        payer_case_id="PY-77",
    )
    case = PACase.objects.get(pk=submitted_case.pk)
    assert case.status == "pended" and case.payer_case_id == "PY-77"
    assert case.answers["Q1"].startswith("E11.9")  # pre-filled from the fields
    with pytest.raises(ValidationError):
        services.pa_case_answer(case_id=case.pk, actor=pharmacist, answers={"Q1": ""})
    services.pa_case_answer(case_id=case.pk, actor=pharmacist, answers={"Q1": "E11.9"})
    case.refresh_from_db()
    assert case.status == "submitted"
    payload = case.submissions.get(kind="request").outbox.payload
    assert "<PARequest>" in payload and "<PACaseID>PY-77</PACaseID>" in payload


def test_closed_response_closes_case(submitted_case):
    _push(submitted_case, decision="closed", reasons=["Member not eligible"])
    assert PACase.objects.get(pk=submitted_case.pk).status == "closed"


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "maybe"},
        {"decision": "approved"},  # no number, no dates
        {
            "decision": "approved",
            "authorization_number": "A1",
            "effective_date": "2026-13-01",
            "expiration_date": "2027-01-01",
        },
        {
            "decision": "approved",
            "authorization_number": "A1",
            "effective_date": "2027-01-01",
            "expiration_date": "2026-01-01",
        },
        {"decision": "denied"},  # no reasons
        {"decision": "pended", "questions": "what?"},
    ],
)
def test_malformed_response_is_kept_flagged_and_changes_nothing(submitted_case, data):
    before = PACase.objects.get(pk=submitted_case.pk)
    history = before.history.count()
    response = _push(submitted_case, **data)
    assert response.pk and response.is_malformed and response.errors and not response.applied
    after = PACase.objects.get(pk=submitted_case.pk)
    assert (after.status, after.authorization_number, after.attention) == (
        before.status,
        "",
        before.attention,
    )
    assert after.history.count() == history
    assert PAResponse.objects.filter(pk=response.pk, raw__contains="case").exists()


def test_response_to_cancelled_case_is_kept_and_refused(submitted_case, pharmacist):
    services.pa_case_cancel(case_id=submitted_case.pk, actor=pharmacist, reason="Therapy changed")
    with pytest.raises(TransitionNotAllowed):
        _push(submitted_case, decision="closed", reasons=["x"])
    response = PAResponse.objects.get(case=submitted_case)
    assert not response.applied and "cannot become" in response.errors["case"]
    cancel = submitted_case.submissions.get(kind="cancel")
    assert "<PACancelRequest>" in cancel.outbox.payload


# --- expiry and renewal -------------------------------------------------------------------------------


def test_approval_expiring_within_window_opens_one_renewal(submitted_case, settings):
    today = timezone.localdate()
    _push(
        submitted_case,
        decision="approved",
        authorization_number="PA-1",
        effective_date=(today - timedelta(days=300)).isoformat(),
        expiration_date=(today + timedelta(days=20)).isoformat(),
    )
    assert services.pa_expiry_sweep(today=today) == {"expired": 0, "renewals": 1, "skipped": 0}
    renewal = PACase.objects.get(renewal_of=submitted_case)
    assert renewal.trigger == "renewal" and renewal.status == "ready_for_review"
    assert PrescriptionAuthorization.objects.get(prescription=renewal.prescription).case == renewal
    assert services.pa_expiry_sweep(today=today)["renewals"] == 0  # once only


def test_approval_outside_window_is_left_alone_and_expired_after_end(submitted_case, settings):
    settings.RXHUB = {**settings.RXHUB, "PA_RENEWAL_WINDOW_DAYS": 10}
    today = timezone.localdate()
    _push(
        submitted_case,
        decision="approved",
        authorization_number="PA-2",
        effective_date=today.isoformat(),
        expiration_date=(today + timedelta(days=20)).isoformat(),
    )
    assert services.pa_expiry_sweep(today=today)["renewals"] == 0
    later = today + timedelta(days=21)
    counts = services.pa_expiry_sweep(today=later)
    assert counts["expired"] == 1 and counts["renewals"] == 1
    assert PACase.objects.get(pk=submitted_case.pk).status == "expired"


# --- polling ------------------------------------------------------------------------------------------


def test_poll_reads_payer_answer_through_the_adapter(submitted_case, payer, settings, http_receiver):
    from pharmacy import ncpdp_parties as parties
    from pharmacy.interop import ncpdp

    payer.endpoint_key = "bh"
    payer.save()
    settings.RXHUB = {**settings.RXHUB, "PAYERS": {"bh": {"status_url": http_receiver.url + "/status"}}}
    today = timezone.localdate()
    xml = ncpdp.build_pa_response(
        header=ncpdp.Header(
            to=ncpdp.Party("P", "1000001"), from_=ncpdp.Party("PY", "610014"), message_id="R1"
        ),
        status="Approved",
        pa_case_id="PY-9",
        relates_to_message_id="X1",
        authorization_number="AUTH-9",
        effective_date=today,
        expiration_date=today + timedelta(days=180),
        # the payer echoes the request's PA parties, as the 2017071 PAResponse requires
        pa_reference_id=f"RXHUB-PA-{submitted_case.pk}",
        patient=parties.patient_info(submitted_case.prescription.patient),
        prescriber=parties.prescriber_info(submitted_case.prescription.prescriber),
        medication=parties.medication_info(submitted_case.prescription),
    )
    http_receiver.reply(200, xml, "application/xml")
    counts = services.pa_poll_open()
    assert counts == {"polled": 1, "answers": 1, "errors": 0}
    assert "reference=RXHUB-PA-" in http_receiver.requests[0]["path"]
    case = PACase.objects.get(pk=submitted_case.pk)
    assert (
        case.status == "approved" and case.authorization_number == "AUTH-9" and case.payer_case_id == "PY-9"
    )


def test_poll_with_garbage_keeps_it_flagged(submitted_case, payer, settings, http_receiver):
    payer.endpoint_key = "bh"
    payer.save()
    settings.RXHUB = {**settings.RXHUB, "PAYERS": {"bh": {"status_url": http_receiver.url + "/status"}}}
    http_receiver.reply(200, "<html>oops</html>", "text/html")
    assert services.pa_poll_open()["errors"] == 1
    assert PACase.objects.get(pk=submitted_case.pk).status == "submitted"
    assert PAResponse.objects.get(case=submitted_case).is_malformed


def test_system_actor_may_cancel(submitted_case):
    services.pa_case_cancel(case_id=submitted_case.pk, actor=system_actor("system:pa-status"))
    assert PACase.objects.get(pk=submitted_case.pk).status == "cancelled"


def test_language_model_draft_is_never_submitted_automatically(pa_rx, make_criteria, pharmacist, settings,
                                                               http_receiver):
    import json

    settings.RXHUB = {**settings.RXHUB, "PA_DRAFTER": {"ENABLED": True, "URL": http_receiver.url, "MODEL": "m"}}
    http_receiver.reply(200, json.dumps({"choices": [{"message": {"content": f"Diabetes [indication:{pa_rx.pk}]."}}]}),
                        "application/json")
    make_criteria(rollout_mode="auto")
    case = _open(pa_rx, pharmacist)
    assert case.drafter == "language-model:m" and case.status == "ready_for_review"
    assert [t["rule"] for t in case.auto_trace if not t["passed"]] == ["Letter drafted by the deterministic template"]


def test_expedited_request_shortens_the_deadline(pa_rx, make_criteria, pharmacist, technician):
    make_criteria()
    case = _open(pa_rx, pharmacist)
    with pytest.raises(PermissionDenied):
        services.pa_case_set_expedited(case_id=case.pk, actor=technician, expedited=True, reason="x")
    with pytest.raises(ValidationError):
        services.pa_case_set_expedited(case_id=case.pk, actor=pharmacist, expedited=True, reason=" ")
    services.pa_case_set_expedited(case_id=case.pk, actor=pharmacist, expedited=True,
                                   reason="A1c 12 %, symptomatic hyperglycaemia")
    services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    case.refresh_from_db()
    assert case.decision_due_at == case.submitted_at + timedelta(hours=24)  # 42 CFR 423.572


def test_only_valid_icd10_diagnoses_count_as_evidence(pa_rx, pharmacist):
    from pharmacy.models import Diagnosis

    Diagnosis.objects.create(patient=pa_rx.patient, code="E11.999", description="typo from an old import")
    case = _open(pa_rx, pharmacist)
    codes = [e["data"]["code"] for e in case.evidence if e["kind"] == "diagnosis"]
    assert codes == ["E11.9"]
