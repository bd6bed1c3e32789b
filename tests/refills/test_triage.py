"""Triage summary (pure) and the staff triage page for patient messages."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from refills.intake import intake_assign, intake_dismiss, intake_receive
from refills.models import IntakeMessage, RefillRequest
from refills.triage import LabFact, TriageFacts, summary_rows, triage_summary
from tests.factories import DrugFactory, LabResultFactory, PatientFactory, PrescriptionFactory

TODAY = date(2026, 11, 30)


def facts(**kw) -> TriageFacts:
    base = dict(patient="Silva, Ana (MRN M1, 60 y)", medication="lisinopril 10 mg tablet", sig="1 daily",
                today=TODAY, status="needs_review", last_fill_date=TODAY - timedelta(days=25),
                last_fill_days_supply=30, run_out_date=TODAY + timedelta(days=5),
                last_visit_date=TODAY - timedelta(days=100))
    return TriageFacts(**{**base, **kw})


def test_summary_has_every_field_and_routine_priority():
    s = triage_summary(facts(diagnoses=("I10 Essential hypertension",), allergies=("Penicillin (hives)",)))
    assert s["last_filled"] == "2026-11-05" and s["days_supply"] == 30 and s["days_since_last_visit"] == 100
    assert s["priority"] == "routine" and s["priority_reasons"] == []
    assert s["relevant_history"][:2] == ["I10 Essential hypertension", "Allergy: Penicillin (hives)"]
    assert s["action_required"] == "Pharmacist review."
    assert s["medication"] == "lisinopril 10 mg tablet — 1 daily"


@pytest.mark.parametrize(("kw", "reason"), [
    ({"run_out_date": TODAY - timedelta(days=3)}, "ran out 3 days ago"),
    ({"run_out_date": TODAY + timedelta(days=1)}, "runs out in 1 day"),
    ({"drug_is_urgent": True}, "clinically urgent"),
    ({"message_text": "I ran out yesterday, please hurry"}, "ran out"),
    ({"labs": (LabFact("Potassium", "6.8", "mmol/L", "HH", TODAY - timedelta(days=2), "2823-3"),)}, "critical lab"),
])
def test_urgent_priority_and_why(kw, reason):
    s = triage_summary(facts(**kw))
    assert s["priority"] == "urgent" and any(reason in r for r in s["priority_reasons"])


@pytest.mark.parametrize(("kw", "action"), [
    ({"status": "auto_approved"}, "None — approved by protocol"),
    ({"kind": "renewal", "dea_schedule": "2"}, "Schedule II"),
    ({"kind": "renewal"}, "Prescriber authorization needed"),
    ({"blocking_reasons": ("Refill too soon",)}, "Pharmacist review: Refill too soon"),
    ({"protocol_suggestion": "approve"}, "protocol suggests approval"),
    ({"status": "awaiting_prescriber"}, "Waiting for the prescriber"),
])
def test_action_required(kw, action):
    assert action in triage_summary(facts(**kw))["action_required"]


def test_protocol_labs_come_first_then_abnormal_then_newest():
    labs = (LabFact("TSH", "2.0", "mIU/L", "N", TODAY - timedelta(days=1), "3016-3"),
            LabFact("ALT", "90", "U/L", "H", TODAY - timedelta(days=50), "1742-6"),
            LabFact("Potassium", "4.1", "mmol/L", "N", TODAY - timedelta(days=90), "2823-3"),
            LabFact("Potassium", "4.4", "mmol/L", "N", TODAY - timedelta(days=200), "2823-3"))
    s = triage_summary(facts(labs=labs, relevant_loinc=("2823-3",)))
    assert [text.split()[0] for text in s["labs"]] == ["Potassium", "ALT", "TSH"]
    assert "4.1" in s["labs"][0]  # the latest potassium only


def test_summary_rows_for_pages():
    rows = dict(summary_rows(triage_summary(facts())))
    assert rows["Days since last visit"] == "100" and rows["Labs"] == "—" and rows["Priority"] == "routine"


# --- staff triage page --------------------------------------------------------------------------------


@pytest.fixture
def ana(db):
    patient = PatientFactory(first_name="Ana", phone="617-555-0100")
    rx = PrescriptionFactory(patient=patient, drug=DrugFactory(name="lisinopril"),
                             written_date=timezone.localdate() - timedelta(days=200))
    LabResultFactory(patient=patient)
    return patient, rx


@pytest.mark.django_db
def test_triage_page_lists_waiting_messages_with_candidates(client, pharmacist, ana, django_assert_max_num_queries):
    patient, rx = ana
    intake_receive(channel="sms", sender="6175550100", text="can I get a refill?", actor=pharmacist)
    intake_receive(channel="sms", sender="2125550199", text="refill please", actor=pharmacist)
    client.force_login(pharmacist)
    with django_assert_max_num_queries(15):
        page = client.get("/refills/triage/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "can I get a refill?" in html and "refill please" in html and "Unknown sender" in html
    assert f'value="{rx.pk}" checked' in html  # the one prescription is suggested


@pytest.mark.django_db
def test_triage_page_query_count_does_not_grow(client, pharmacist, ana, django_assert_num_queries):
    client.force_login(pharmacist)
    intake_receive(channel="sms", sender="2125550100", text="hello", actor=pharmacist)
    client.get("/refills/triage/")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get("/refills/triage/")
    for n in range(5):
        intake_receive(channel="sms", sender=f"212555{n:04d}", text="hello", actor=pharmacist)
    with CaptureQueriesContext(connection) as six:
        client.get("/refills/triage/")
    assert len(six.captured_queries) == len(one.captured_queries)


@pytest.mark.django_db
def test_assign_from_triage_opens_request_and_resolves(client, technician, ana):
    patient, rx = ana
    msg = intake_receive(channel="sms", sender="2125550199", text="refill my bp med", actor=technician)
    client.force_login(technician)
    response = client.post(f"/refills/triage/{msg.pk}/assign/", {"prescription": rx.pk, "note": "called back"})
    assert response.status_code == 302
    msg.refresh_from_db()
    assert msg.status == "resolved" and msg.handled_by == technician and "called back" in msg.resolution
    req = RefillRequest.objects.get(prescription=rx)
    assert req.intake == msg and req.source == "patient" and req.triage_summary["message"] == "refill my bp med"
    # resolved messages leave the list and cannot be assigned again
    again = client.post(f"/refills/triage/{msg.pk}/assign/", {"prescription": rx.pk}, follow=True)
    assert "cannot become resolved" in again.content.decode()
    assert RefillRequest.objects.count() == 1


@pytest.mark.django_db
def test_dismiss_needs_a_reason(client, pharmacist, ana):
    msg = intake_receive(channel="sms", sender="2125550199", text="wrong number sorry", actor=pharmacist)
    client.force_login(pharmacist)
    client.post(f"/refills/triage/{msg.pk}/dismiss/", {"reason": ""})
    msg.refresh_from_db()
    assert msg.status == "triage"
    client.post(f"/refills/triage/{msg.pk}/dismiss/", {"reason": "Not a refill request"})
    msg.refresh_from_db()
    assert msg.status == "dismissed" and msg.resolution == "Not a refill request"
    assert msg.history.latest().history_user == pharmacist
    assert "wrong number" not in client.get("/refills/triage/").content.decode()


@pytest.mark.django_db
def test_prescriber_cannot_use_triage(client, make_user, ana):
    client.force_login(make_user("prescriber"))
    assert client.get("/refills/triage/").status_code == 403


@pytest.mark.django_db
def test_services_refuse_other_roles(make_user, ana):
    from django.core.exceptions import PermissionDenied

    patient, rx = ana
    prescriber = make_user("prescriber")
    msg = intake_receive(channel="sms", sender="2125550199", text="x", actor=prescriber)
    with pytest.raises(PermissionDenied):
        intake_assign(intake_id=msg.pk, prescription_id=rx.pk, actor=prescriber)
    with pytest.raises(PermissionDenied):
        intake_dismiss(intake_id=msg.pk, actor=prescriber, reason="no")
    assert IntakeMessage.objects.get(pk=msg.pk).status == "triage"


@pytest.mark.django_db
def test_every_evaluated_request_carries_a_triage_summary(api_client_for, ana):
    patient, rx = ana
    api = api_client_for("pharmacist")
    created = api.post("/api/v1/refill-requests/", {"prescription": rx.pk}, format="json").json()
    summary = api.get(f"/api/v1/refill-requests/{created['id']}/").json()["triage_summary"]
    assert summary["priority"] in ("urgent", "routine") and summary["action_required"]
    assert "Potassium" in summary["labs"][0]


@pytest.mark.django_db
def test_request_page_shows_the_triage_summary(client, pharmacist, ana):
    patient, rx = ana
    req = intake_assign(intake_id=intake_receive(channel="sms", sender="2125550199", text="refill please",
                                                 actor=pharmacist).pk, prescription_id=rx.pk, actor=pharmacist)
    client.force_login(pharmacist)
    html = client.get(f"/refills/{req.pk}/").content.decode()
    assert "Action required" in html and "Patient&#x27;s message" in html and "refill please" in html


@pytest.mark.django_db
def test_queue_shows_triage_count_and_each_requests_action(client, pharmacist, ana):
    patient, rx = ana
    intake_receive(channel="sms", sender="2125550199", text="hello?", actor=pharmacist)
    intake_receive(channel="sms", sender="6175550100", text="I ran out of lisinopril", actor=pharmacist)
    client.force_login(pharmacist)
    html = client.get("/refills/").content.decode()
    assert "1</strong> patient message to triage" in html
    assert "badge urgent" in html and "Pharmacist review" in html
