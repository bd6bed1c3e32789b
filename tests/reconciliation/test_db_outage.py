"""A database outage (PostgreSQL really unreachable: the connection points at a closed port) is
answered 503 — API JSON with Retry-After, HTTP HL7 an AE ACK, FHIR a transient OperationOutcome,
NCPDP an Error 602, pages the styled 503 — and the next request after the database returns works."""
from __future__ import annotations

import json
import socket

import pytest
from django.db import connection
from django.test import Client

from reconciliation.models import InboundMessage

from .conftest import a03

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="an in-memory SQLite database cannot go away"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def outage():
    saved = dict(connection.settings_dict)

    def down():
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))

    def up():
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    yield down, up
    up()


def _ack_code(body: bytes) -> str:
    msa = next(line for line in body.decode().split("\r") if line.startswith("MSA"))
    return msa.split("|")[1]


def test_outage_answers_503_everywhere_then_resumes(linked_ada, api_client_for, make_user, outage):
    down, up = outage
    api = api_client_for("integrator")
    staff = Client(raise_request_exception=False)
    staff.force_login(make_user("pharmacist"))
    down()

    listing = api.get("/api/v1/inbound-messages/")
    assert listing.status_code == 503 and listing["Retry-After"].isdigit()
    assert listing.json()["code"] == "database_unavailable" and listing["Content-Type"] == "application/json"
    hl7 = api.post("/api/v1/hl7/", data=a03(control_id="OUT-1"), content_type="application/hl7-v2")
    assert hl7.status_code == 503 and hl7["Retry-After"] and _ack_code(hl7.content) == "AE"
    assert b"MSA|AE|OUT-1" in hl7.content  # the ACK names the message the sender must resend
    fhir = api.post("/api/v1/fhir/", data=b'{"resourceType": "Bundle", "id": "b1", "type": "collection"}',
                    content_type="application/fhir+json")
    assert fhir.status_code == 503 and json.loads(fhir.content)["issue"][0]["code"] == "transient"
    ncpdp = api.post("/api/v1/ncpdp/", data=b"<Message/>", content_type="application/xml")
    assert ncpdp.status_code == 503 and b"<Code>602</Code>" in ncpdp.content.replace(b" ", b"")
    page = staff.get("/reconciliation/")
    assert page.status_code == 503 and page["Retry-After"] and b"unavailable" in page.content.lower()
    assert b"Traceback" not in page.content

    up()  # the database is back: no restart needed
    resent = api.post("/api/v1/hl7/", data=a03(control_id="OUT-1"), content_type="application/hl7-v2")
    assert resent.status_code == 200 and _ack_code(resent.content) == "AA"
    assert InboundMessage.objects.get(control_id="OUT-1").status == "processed"
    assert api.get("/api/v1/inbound-messages/").status_code == 200
    assert staff.get("/reconciliation/").status_code == 200
