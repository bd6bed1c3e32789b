"""Lossless inbound for HL7 v2 / FHIR / C-CDA through the core pipeline (pharmacy/inbound.py):
dedupe on sender + control ID + SHA-256, reused control IDs, resend after reject or failure,
sweep of rows left received, retries with backoff, and hostile input stored and refused."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from pharmacy.inbound import sweep_all
from reconciliation import services
from reconciliation.models import InboundMessage, PatientMatchItem, ReconciliationTask
from tests.factories import PatientFactory

from .conftest import a03, hl7

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def msa(ack: str) -> tuple[str, str]:
    line = next(seg for seg in ack.replace("\n", "\r").split("\r") if seg.startswith("MSA"))
    fields = line.split("|")
    return fields[1], fields[2]


def rds(control_id: str, drug: str = "WARFARIN 5MG TAB", trigger: str = "RDS^O13^RDS_O13") -> str:
    """RDS^O13 (dispense) or RDE^O25 (refill authorization request, HL7 v2.5 ch. 4A) for Ada."""
    return hl7(f"MSH|^~\\&|EPIC|GENHOSP|RXHUB|PHARM|20261130101500||{trigger}|{control_id}|P|2.5.1",
               "PID|1||MRN12345^^^GENHOSP^MR||LOVELACE^ADA||19600105|F",
               "ORC|RE|ORD1",
               f"RXE|^^^20261130|11289^{drug}^RXNORM|5||MG|TAB|Take 1 tablet daily",
               f"RXD|1|11289^{drug}^RXNORM|20261130|30|TAB")


def test_resend_of_a_processed_message_is_a_duplicate_answered_aa(linked_ada):
    first = services.ingest(channel="mllp", payload=a03(control_id="R-1"))
    again = services.ingest(channel="mllp", payload=a03(control_id="R-1"))
    assert (first.ack_code, again.ack_code) == ("AA", "AA")
    assert again.message.status == "duplicate" and again.message.duplicate_of_id == first.message.pk
    assert first.message.payload_sha256 == again.message.payload_sha256
    assert ReconciliationTask.objects.count() == 1


def test_rde_o25_reusing_an_rds_o13_control_id_is_read_as_its_own_message(linked_ada, api_client_for):
    first = services.ingest(channel="mllp", payload=rds("RX-77"))
    reused = services.ingest(channel="mllp", payload=rds("RX-77", drug="METFORMIN 500MG TAB",
                                                         trigger="RDE^O25^RDE_O25"))
    assert first.message.status == "processed" and reused.ack_code == "AA"
    assert reused.message.status == "processed" and reused.message.control_id_reused
    assert reused.message.message_type == "RDE^O25" and not first.message.control_id_reused
    assert reused.message.summary["records"] == 1  # it was read, not filed as a duplicate
    body = api_client_for("pharmacist").get("/api/v1/inbound-messages/").json()
    listed = {m["id"]: m["control_id_reused"] for m in body["results"]}
    assert listed == {first.message.pk: False, reused.message.pk: True}


def test_ccda_with_a_constant_document_id_but_another_patient_is_not_a_duplicate(linked_ada, ada):
    PatientFactory(first_name="Grace", last_name="Hopper", birth_date="1906-12-09", sex="F")
    ada_doc = (DATA / "discharge_summary.xml").read_text()
    grace_doc = (ada_doc.replace("<given>Ada</given><family>Lovelace</family>",
                                 "<given>Grace</given><family>Hopper</family>")
                 .replace('<birthTime value="19600105"/>', '<birthTime value="19061209"/>')
                 .replace('extension="MRN12345"', 'extension="MRN99999"')
                 .replace('displayName="Penicillin"', 'displayName="Sulfamethoxazole"')
                 .replace("Penicillin: hives", "Sulfamethoxazole: rash"))
    first = services.ingest(channel="http_document", payload=ada_doc)
    second = services.ingest(channel="http_document", payload=grace_doc)
    assert first.message.control_id == second.message.control_id  # the vendor's constant document id
    assert second.message.status != "duplicate" and second.message.control_id_reused
    assert second.message.status in ("processed", "awaiting_match")
    if second.message.status == "processed":
        assert second.message.patient.last_name == "Hopper"
        task = ReconciliationTask.objects.get(inbound_message=second.message)
        assert any("Sulfamethoxazole" in str(a) for a in task.ehr_allergies)
    else:
        assert PatientMatchItem.objects.get(inbound_message=second.message).patient_data["last_name"] == "Hopper"


def test_oversize_then_fixed_message_with_the_same_control_id_is_processed(linked_ada, settings):
    settings.RXHUB = {**settings.RXHUB, "RECON_MAX_PAYLOAD_BYTES": 600}
    big = a03(control_id="FIX-1", meds=("WARFARIN 5MG DAILY " + "x" * 800,))
    refused = services.ingest(channel="mllp", payload=big)
    assert refused.ack_code == "AR" and "exceeds" in refused.error
    assert (refused.message.status, refused.message.payload_truncated, refused.message.size_bytes) == (
        "rejected", True, len(big.encode()))
    assert len(refused.message.payload) == 600  # the first bytes, up to the limit
    fixed = services.ingest(channel="mllp", payload=a03(control_id="FIX-1"))
    assert fixed.ack_code == "AA" and fixed.message.status == "processed"
    assert fixed.message.control_id_reused  # same MSH-10, other content
    again = services.ingest(channel="mllp", payload=big)  # the oversize one resent: refused again, stored
    assert again.ack_code == "AR" and InboundMessage.objects.filter(status="rejected").count() == 2


def test_resend_after_a_failure_reprocesses_the_original_and_answers_with_that(linked_ada, monkeypatch):
    real = services.inbound._open_task
    monkeypatch.setattr(services.inbound, "_open_task", lambda *a, **k: 1 / 0)
    failed = services.ingest(channel="mllp", payload=a03(control_id="AE-1"))
    assert failed.ack_code == "AE" and failed.message.status == "failed" and failed.message.next_attempt_at
    monkeypatch.setattr(services.inbound, "_open_task", real)
    resent = services.ingest(channel="mllp", payload=a03(control_id="AE-1"))
    assert resent.ack_code == "AA" and resent.message.status == "duplicate"
    original = InboundMessage.objects.get(pk=failed.message.pk)
    assert (original.status, original.attempts, original.next_attempt_at) == ("processed", 2, None)
    assert resent.message.duplicate_of_id == original.pk
    assert ReconciliationTask.objects.filter(inbound_message=original).count() == 1
    assert services.ingest(channel="mllp", payload=a03(control_id="AE-1")).ack_code == "AA"
    assert ReconciliationTask.objects.count() == 1  # processed exactly once


def test_stored_but_unprocessed_message_is_swept_after_a_minute_or_on_resend(linked_ada):
    stuck = services.inbound_receive(channel="mllp", payload=a03(control_id="S-1"))  # the listener died here
    assert stuck.status == "received" and sweep_all()["reconciliation"] == 0  # not a minute old yet
    InboundMessage.objects.filter(pk=stuck.pk).update(received_at=timezone.now() - timedelta(minutes=2))
    assert sweep_all()["reconciliation"] == 1
    stuck.refresh_from_db()
    assert stuck.status == "processed"
    other = services.inbound_receive(channel="mllp", payload=a03(control_id="S-2"))
    resend = services.ingest(channel="mllp", payload=a03(control_id="S-2"))  # before any sweep
    other.refresh_from_db()
    assert resend.ack_code == "AA" and other.status == "processed" and resend.message.duplicate_of_id == other.pk


def test_failed_message_is_retried_with_backoff_up_to_the_limit(linked_ada, monkeypatch, settings):
    settings.RXHUB = {**settings.RXHUB, "INBOUND_MAX_ATTEMPTS": 3}
    monkeypatch.setattr(services.inbound, "_open_task", lambda *a, **k: 1 / 0)
    message = services.ingest(channel="mllp", payload=a03(control_id="B-1")).message
    delays = []
    for _ in range(3):
        message.refresh_from_db()
        if message.next_attempt_at is None:
            break
        delays.append(round((message.next_attempt_at - timezone.now()).total_seconds() / 60))
        InboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert sweep_all()["reconciliation"] == 1
    message.refresh_from_db()
    assert delays == [1, 2] and (message.status, message.attempts, message.next_attempt_at) == ("failed", 3, None)
    assert sweep_all()["reconciliation"] == 0  # stays visible as failed; a person may retry it


# --- hostile input on every HTTP inbound endpoint --------------------------------------------

NESTED_JSON = b'{"resourceType": "Bundle", "id": "deep", "entry": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
SURROGATE_JSON = b'{"resourceType": "Patient", "id": "\\ud800", "meta": {"source": "\\udfff"}}'
NUL_JSON = b'{"resourceType": "Patient", "id": "a\\u0000b"}'
BOGUS_ENCODING = b'<?xml version="1.0" encoding="bogus"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
          b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol3;'
          b"</title></ClinicalDocument>")
HOSTILE = [
    ("/api/v1/fhir/", NESTED_JSON, "nested"),
    ("/api/v1/fhir/", SURROGATE_JSON, "surrogates"),
    ("/api/v1/fhir/", b"\xff\xfe\x00{", "undecodable"),
    ("/api/v1/fhir/", b'{"resourceType": ', "truncated"),
    ("/api/v1/documents/", BOGUS_ENCODING, "bogus-encoding"),
    ("/api/v1/documents/", LAUGHS, "billion-laughs"),
    ("/api/v1/documents/", b"<ClinicalDocument><unclosed>", "malformed-xml"),
    ("/api/v1/documents/", b'{"not": "xml"}' + b"[" * 10_000, "wrong-format"),
    ("/api/v1/hl7/", b"MSH|^~\\&|X|Y|||20261130||||", "no-msh9"),
    ("/api/v1/hl7/", b"\x00\x01\x02 binary", "binary"),
    ("/api/v1/hl7/", b"", "empty"),
]


@pytest.mark.parametrize(("url", "body"), [h[:2] for h in HOSTILE], ids=[h[2] for h in HOSTILE])
def test_hostile_input_is_stored_and_answered_4xx(db, api_client_for, url, body):
    client = api_client_for("integrator")
    response = client.post(url, data=body, content_type="application/octet-stream")
    assert 400 <= response.status_code < 500, response.content[:300]
    message = InboundMessage.objects.get()  # stored, whatever it was
    assert message.status == "rejected" and message.error
    assert message.size_bytes == len(body) and len(message.payload_sha256) == 64
    if url == "/api/v1/hl7/":
        assert response["Content-Type"] == "application/hl7-v2" and msa(response.content.decode())[0] == "AR"
    elif url == "/api/v1/fhir/":
        assert json.loads(response.content)["resourceType"] == "OperationOutcome"
    else:
        assert response.json()["code"] == "unreadable" and response.json()["id"] == message.pk


ODD_BUT_READABLE = [
    ("/api/v1/fhir/", NUL_JSON),  # a NUL inside a JSON string: valid JSON, stored without the NUL
    ("/api/v1/hl7/", "MSH|^~\\&|\ud800|Y|||20261130||ADT^A03|C1|P|2.5.1\r".encode("utf-8", "surrogatepass")),
    ("/api/v1/hl7/", "MSH|^~\\&|CAFÉ|Y|||20261130||ADT^A03|C2|P|2.5.1\r".encode("cp1252")),
]


@pytest.mark.parametrize(("url", "body"), ODD_BUT_READABLE, ids=["fhir-nul", "hl7-surrogate-bytes", "hl7-cp1252"])
def test_odd_but_readable_input_is_stored_and_answered_without_a_5xx(db, api_client_for, url, body):
    response = api_client_for("integrator").post(url, data=body, content_type="application/octet-stream")
    assert response.status_code < 500, response.content[:300]
    message = InboundMessage.objects.get()
    assert message.size_bytes == len(body) and "\x00" not in message.payload and message.status != "received"


@pytest.mark.parametrize("url", ["/api/v1/hl7/", "/api/v1/fhir/", "/api/v1/documents/"])
def test_oversize_body_is_stored_cut_and_answered_413_without_reading_it_whole(db, api_client_for, settings, url):
    settings.RXHUB = {**settings.RXHUB, "RECON_MAX_PAYLOAD_BYTES": 1000}
    body = a03(control_id="BIG").encode() + b"X" * 50_000
    response = api_client_for("integrator").post(url, data=body, content_type="text/plain")
    assert response.status_code == 413
    message = InboundMessage.objects.get()
    assert (message.status, message.size_bytes, message.payload_truncated, len(message.payload)) == (
        "rejected", len(body), True, 1000)
