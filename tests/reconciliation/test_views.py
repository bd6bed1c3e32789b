"""Server-rendered pages: queue order, task page, accept/reject forms, failed messages, matching."""
from __future__ import annotations

from datetime import date

from pharmacy.models import Prescription
from reconciliation import services
from reconciliation.models import Discrepancy, InboundMessage, PatientMatchItem
from tests.factories import PatientFactory

from .conftest import a03


def test_queue_lists_high_priority_first_and_highlights_discharges(linked_ada, client, pharmacist):
    services.ingest(channel="mllp", payload=a03(control_id="Q-1", meds=("WARFARIN 5MG DAILY", "OMEPRAZOLE 20MG DAILY")))
    services.ingest(channel="mllp", payload=a03(control_id="Q-2", meds=("WARFARIN 10MG DAILY",)))
    client.force_login(pharmacist)
    page = client.get("/reconciliation/")
    assert page.status_code == 200
    rows = page.context["page"].object_list
    assert [t.priority for t in rows] == ["HIGH", "MEDIUM"]
    assert b"badge urgent\">Discharge" in page.content


def test_task_page_accept_and_reject_with_notes(linked_ada, client, pharmacist, django_assert_max_num_queries):
    services.ingest(channel="mllp", payload=a03())
    task = linked_ada.reconciliation_tasks.get()
    client.force_login(pharmacist)
    with django_assert_max_num_queries(20):
        page = client.get(f"/reconciliation/{task.pk}/")
    assert page.status_code == 200 and b"Accept (a)" in page.content and b"History" in page.content
    missing = task.discrepancies.get(kind="missing_from_ehr")
    new = task.discrepancies.get(kind="new_in_ehr")
    response = client.post(f"/reconciliation/discrepancies/{missing.pk}/accept/", {"note": "per Dr Smith"})
    assert response.status_code == 302 and response["Location"] == f"/reconciliation/{task.pk}/"
    client.post(f"/reconciliation/discrepancies/{new.pk}/reject/", {"note": "inpatient only"})
    assert Prescription.objects.get(pk=linked_ada.rx_lisinopril.pk).status == "on_hold"
    assert dict(Discrepancy.objects.values_list("kind", "note")) == {"missing_from_ehr": "per Dr Smith",
                                                                     "new_in_ehr": "inpatient only"}
    patient_page = client.get(f"/patients/{linked_ada.pk}/")
    assert b"per Dr Smith" in patient_page.content and b"Medication reconciliation" in patient_page.content


def test_technician_sees_the_task_but_cannot_decide(linked_ada, client, technician):
    services.ingest(channel="mllp", payload=a03())
    task = linked_ada.reconciliation_tasks.get()
    client.force_login(technician)
    page = client.get(f"/reconciliation/{task.pk}/")
    assert page.status_code == 200 and b"Accept (a)" not in page.content
    d = task.discrepancies.first()
    assert client.post(f"/reconciliation/discrepancies/{d.pk}/accept/").status_code == 403


def test_failed_message_listed_and_retried_from_the_page(linked_ada, client, pharmacist, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(services.inbound, "_open_task", lambda *a, **k: 1 / 0)
        message = services.ingest(channel="mllp", payload=a03()).message
    client.force_login(pharmacist)
    listing = client.get("/reconciliation/inbound/?status=failed")
    assert b"ZeroDivisionError" in listing.content and b"Retry" in listing.content
    client.post(f"/reconciliation/inbound/{message.pk}/retry/")
    assert InboundMessage.objects.get(pk=message.pk).status == "processed"


def test_match_page_resolves_an_ambiguous_patient(ada, client, technician):
    PatientFactory(first_name="Ada", last_name="Lovelace", birth_date=date(1960, 1, 5), sex="F")
    services.ingest(channel="mllp", payload=a03(mrn="NEW-1"))
    item = PatientMatchItem.objects.get()
    client.force_login(technician)
    page = client.get("/reconciliation/matches/")
    assert page.status_code == 200 and b"Ambiguous" in page.content
    unknown = client.post(f"/reconciliation/matches/{item.pk}/resolve/", {"patient": 999999}, follow=True)
    assert b"Patient 999999 does not exist." in unknown.content
    client.post(f"/reconciliation/matches/{item.pk}/resolve/", {"patient": ada.pk})
    item.refresh_from_db()
    assert item.status == "resolved" and item.inbound_message.status == "processed"


def test_dashboard_card(linked_ada, client, pharmacist):
    services.ingest(channel="mllp", payload=a03())
    client.force_login(pharmacist)
    page = client.get("/")
    assert b"Medication reconciliation" in page.content
    [card] = [q for q in page.context["queues"] if q.key == "reconciliation"]
    assert card.count == 1 and "1 discharge" in card.detail


def test_queue_costs_the_same_queries_at_two_sizes(linked_ada, client, pharmacist, django_assert_max_num_queries):
    client.force_login(pharmacist)
    services.ingest(channel="mllp", payload=a03(control_id="S-0"))
    with django_assert_max_num_queries(14) as small:
        client.get("/reconciliation/")
    for n in range(1, 8):
        services.ingest(channel="mllp", payload=a03(control_id=f"S-{n}", meds=(f"WARFARIN {n + 5}MG DAILY",)))
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        page = client.get("/reconciliation/")
    assert len(page.context["page"].object_list) == 8
    assert len(large.captured_queries) == len(small.captured_queries)


def test_match_score_weights():
    from pharmacy.interop.clinical import PatientData
    from reconciliation.matching import score_candidate

    data = PatientData(family="Lovelace", given="ADA M", birth_date=date(1960, 1, 5), sex="F")
    assert score_candidate(data, first_name="Ada", last_name="LOVELACE", birth_date=date(1960, 1, 5), sex="F")[0] == 1.0
    assert (
        score_candidate(data, first_name="Anne", last_name="Lovelace", birth_date=date(1960, 1, 5), sex="F")[0] == 0.85
    )
    assert score_candidate(data, first_name="Ada", last_name="Byron", birth_date=date(1960, 1, 5), sex="M")[0] == 0.6


def test_consent_to_exchange_recorded_from_the_patient_page(linked_ada, client, pharmacist, technician):
    from reconciliation.models import EhrLink

    link = EhrLink.objects.get()
    client.force_login(technician)
    assert client.post(f"/reconciliation/links/{link.pk}/consent/", {"consent": "1"}).status_code == 403
    client.force_login(pharmacist)
    assert b"Record consent" in client.get(f"/patients/{linked_ada.pk}/").content
    client.post(f"/reconciliation/links/{link.pk}/consent/", {"consent": "1"})
    link.refresh_from_db()
    assert link.consent_to_exchange and link.history.first().history_user == pharmacist


def test_pull_button_queues_the_pull_as_a_task_and_the_patient_page_shows_its_result(
        linked_ada, client, pharmacist, http_receiver, django_capture_on_commit_callbacks):
    """The page does not wait for the EHR (network I/O in a task, after commit); the task's outcome
    is shown in the patient's reconciliation panel — a failure with its reason, then a success."""
    import json

    from reconciliation.models import EhrLink

    EhrLink.objects.update(fhir_base_url=http_receiver.url + "/fhir", fhir_patient_id="p-1")
    client.force_login(pharmacist)
    http_receiver.fail_next(9, 404)  # the EHR refuses: the task records why
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/reconciliation/patients/{linked_ada.pk}/pull/", follow=True)
    assert "EHR pull started" in response.content.decode() and http_receiver.requests == []  # not run yet
    for callback in queued:
        callback()  # the task (django-q2 runs synchronously in tests) stores its result
    page = client.get(f"/patients/{linked_ada.pk}/").content.decode()
    assert 'data-testid="ehr-pull-result"' in page and "failed" in page and "HTTP 404" in page

    http_receiver.failures.clear()
    http_receiver.reply(200, json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}),
                        "application/fhir+json")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/reconciliation/patients/{linked_ada.pk}/pull/")
    message = InboundMessage.objects.get(channel="pull")
    page = client.get(f"/patients/{linked_ada.pk}/").content.decode()
    assert f"record read (inbound message {message.pk}, {message.status})" in page
