"""REST API: inbound feeds (HL7, FHIR, C-CDA), inbound messages and retry, tasks, accept/reject."""
from __future__ import annotations

import json
from pathlib import Path

import hl7

from pharmacy.models import Prescription
from reconciliation.models import Discrepancy, InboundMessage, ReconciliationTask
from tests.conftest import corpus_files

from .conftest import a03

DATA = Path(__file__).parent / "data"


def test_hl7_over_http_answers_with_an_ack(linked_ada, api_client_for):
    client = api_client_for("integrator")
    response = client.post("/api/v1/hl7/", data=a03(control_id="H-1"), content_type="application/hl7-v2")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/hl7-v2")
    msa = hl7.parse(response.content.decode()).segment("MSA")
    assert (str(msa[1]), str(msa[2])) == ("AA", "H-1")
    bad = client.post("/api/v1/hl7/", data="MSH|^~\\&|A|B", content_type="text/plain")
    assert bad.status_code == 400 and "MSA|AR" in bad.content.decode()


def test_fhir_bundle_accepted_and_invalid_json_names_the_problem(db, api_client_for):
    client = api_client_for("integrator")
    bundle = (corpus_files("fhir-r4", pattern="bundle-response-medsallergies.json")[0]).read_bytes()
    response = client.post("/api/v1/fhir/", data=bundle, content_type="application/fhir+json")
    assert response.status_code == 201, response.content
    assert InboundMessage.objects.get(pk=response.json()["id"]).format == "fhir"
    broken = client.post("/api/v1/fhir/", data=b'{"resourceType": "Observation", "status": 3',
                         content_type="application/fhir+json")
    assert broken.status_code == 400
    outcome = json.loads(broken.content)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    wrong = client.post("/api/v1/fhir/", data=json.dumps({"resourceType": "Bundle", "id": "b-bad",
                                                         "entry": [{"resource": 5}]}),
                        content_type="application/fhir+json")
    assert wrong.status_code == 400
    assert json.loads(wrong.content)["issue"][0]["expression"] == ["Bundle.entry[0].resource"]
    # Stored first either way: nothing is dropped, the error is kept with the message.
    assert InboundMessage.objects.count() == 3
    assert InboundMessage.objects.get(control_id="b-bad").status == "rejected"


def test_ccda_document_creates_a_discharge_task(linked_ada, api_client_for):
    client = api_client_for("integrator")
    response = client.post("/api/v1/documents/", data=(DATA / "discharge_summary.xml").read_bytes(),
                           content_type="application/xml")
    assert response.status_code == 201 and response.json()["status"] == "processed"
    [task_id] = response.json()["tasks"]
    assert ReconciliationTask.objects.get(pk=task_id).kind == "discharge"


def test_feeds_are_for_integrators_not_technicians(db, api_client_for):
    response = api_client_for("technician").post("/api/v1/hl7/", data=a03(), content_type="text/plain")
    assert response.status_code == 403
    assert InboundMessage.objects.count() == 0


def test_inbound_messages_filter_and_retry(linked_ada, api_client_for, monkeypatch):
    from reconciliation import services

    client = api_client_for("integrator")
    with monkeypatch.context() as m:
        m.setattr(services.inbound, "_open_task", lambda *a, **k: 1 / 0)
        client.post("/api/v1/hl7/", data=a03(control_id="F-1"), content_type="text/plain")
    client.post("/api/v1/hl7/", data=a03(control_id="OK-1", meds=("WARFARIN 5MG DAILY",)), content_type="text/plain")
    # A feed account posts but reads no patient's messages unless bound to the patient's pharmacy.
    assert client.get("/api/v1/inbound-messages/").json()["count"] == 0
    client = api_client_for("technician")
    failed = client.get("/api/v1/inbound-messages/", {"status": "failed", "type": "ADT^A03", "channel": "http_hl7"})
    assert [row["control_id"] for row in failed.json()["results"]] == ["F-1"]
    assert "payload" not in failed.json()["results"][0]
    by_sender = client.get("/api/v1/inbound-messages/", {"sender": "epic"}).json()
    assert by_sender["count"] == 2
    message_id = failed.json()["results"][0]["id"]
    retried = client.post(f"/api/v1/inbound-messages/{message_id}/retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "processed"
    again = client.post(f"/api/v1/inbound-messages/{message_id}/retry/")
    assert again.status_code == 409 and again.json()["code"] == "transition_not_allowed"


def test_tasks_and_accept_reject(linked_ada, api_client_for, pharmacist):
    api_client_for("integrator").post("/api/v1/hl7/", data=a03(), content_type="text/plain")
    client = api_client_for(user=pharmacist)
    tasks = client.get("/api/v1/reconciliation-tasks/", {"status": "open"}).json()
    assert tasks["count"] == 1
    task = client.get(f"/api/v1/reconciliation-tasks/{tasks['results'][0]['id']}/").json()
    kinds = {d["kind"]: d["id"] for d in task["discrepancies"]}
    assert set(kinds) == {"missing_from_ehr", "new_in_ehr"}
    accepted = client.post(f"/api/v1/discrepancies/{kinds['missing_from_ehr']}/accept/", {"note": "ok"}, format="json")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert Prescription.objects.get(pk=linked_ada.rx_lisinopril.pk).status == "on_hold"
    rejected = client.post(f"/api/v1/discrepancies/{kinds['new_in_ehr']}/reject/", {"note": "no"}, format="json")
    assert rejected.json()["status"] == "rejected"
    twice = client.post(f"/api/v1/discrepancies/{kinds['new_in_ehr']}/accept/", {}, format="json")
    assert twice.status_code == 409
    assert client.get(f"/api/v1/reconciliation-tasks/{task['id']}/").json()["status"] == "completed"


def test_technician_reads_but_cannot_accept(linked_ada, api_client_for):
    api_client_for("integrator").post("/api/v1/hl7/", data=a03(), content_type="text/plain")
    client = api_client_for("technician")
    d = Discrepancy.objects.first()
    assert client.get(f"/api/v1/discrepancies/{d.pk}/").status_code == 200
    assert client.post(f"/api/v1/discrepancies/{d.pk}/accept/", {}, format="json").status_code == 403
    d.refresh_from_db()
    assert d.status == "proposed"
