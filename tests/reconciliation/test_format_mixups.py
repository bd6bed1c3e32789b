"""A payload sent to the wrong endpoint is refused plainly — the detected format named and where to
send it — and never acknowledged AA (HL7 v2.5.1 §2.9.2: AR for a message that cannot be accepted)."""
from __future__ import annotations

import json

import hl7
import pytest

from pharmacy.interop.clinical import ClinicalParseError
from pharmacy.interop.detect import read_clinical, sniff
from reconciliation.models import InboundMessage

from .conftest import a03

NCPDP = (b'<?xml version="1.0" encoding="UTF-8"?><Message xmlns="http://www.ncpdp.org/schema/SCRIPT" '
         b'version="2017071"><Header><To Qualifier="P">1234567</To></Header><Body><NewRx/></Body></Message>')
HL7_XML = (b'<?xml version="1.0"?><ADT_A01 xmlns="urn:hl7-org:v2xml"><MSH><MSH.1>|</MSH.1>'
           b'<MSH.2>^~\\&amp;</MSH.2></MSH></ADT_A01>')
FHIR_JSON = json.dumps({"resourceType": "MedicationStatement", "status": "active",
                        "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {"text": "x"}}).encode()
FHIR_XML = b'<MedicationStatement xmlns="http://hl7.org/fhir"><status value="active"/></MedicationStatement>'


@pytest.mark.parametrize(
    ("body", "kind"),
    [(NCPDP, "ncpdp"), (HL7_XML, "hl7v2-xml"), (FHIR_JSON, "fhir"), (FHIR_XML, "fhir-xml"), (a03().encode(), "hl7v2"),
     (b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "ccda"), (b"<html><body>hi</body></html>", "xml")],
)
def test_sniff(body, kind):
    assert sniff(body) == kind


@pytest.mark.parametrize(
    ("endpoint", "body", "content_type", "named", "where"),
    [
        ("/api/v1/documents/", NCPDP, "application/xml", "NCPDP SCRIPT XML", "/api/v1/ncpdp/"),
        ("/api/v1/documents/", HL7_XML, "application/xml", "HL7 v2 in its XML encoding", "/api/v1/hl7/"),
        ("/api/v1/documents/", FHIR_JSON, "application/json", "FHIR JSON", "/api/v1/fhir/"),
        ("/api/v1/fhir/", a03().encode(), "application/fhir+json", "HL7 v2", "/api/v1/hl7/"),
        ("/api/v1/fhir/", FHIR_XML, "application/fhir+xml", "FHIR XML", "FHIR JSON to /api/v1/fhir/"),
    ],
)
def test_wrong_endpoint_is_a_400_naming_the_format_and_where(db, api_client_for, endpoint, body, content_type,
                                                             named, where):
    response = api_client_for("integrator").post(endpoint, data=body, content_type=content_type)
    assert response.status_code == 400, response.content
    text = response.content.decode()
    assert named in text and where in text
    assert InboundMessage.objects.get().status == "rejected"  # stored first, refused


@pytest.mark.parametrize(("body", "named", "where"), [(FHIR_JSON, "FHIR JSON", "/api/v1/fhir/"),
                                                      (NCPDP, "NCPDP SCRIPT XML", "/api/v1/ncpdp/"),
                                                      (HL7_XML, "HL7 v2 in its XML encoding", "ER7")])
def test_hl7_endpoint_answers_ar_never_aa(db, api_client_for, body, named, where):
    response = api_client_for("integrator").post("/api/v1/hl7/", data=body, content_type="application/hl7-v2")
    assert response.status_code == 400
    ack = response.content.decode()
    msa = hl7.parse(ack).segment("MSA")
    assert str(msa[1]) == "AR"
    assert named in ack and where in ack


@pytest.mark.parametrize(("body", "named"), [(NCPDP, "NCPDP SCRIPT XML"), (HL7_XML, "HL7 v2 in its XML encoding"),
                                             (FHIR_XML, "FHIR XML")])
def test_readers_name_the_format_instead_of_not_a_ccda(body, named):
    with pytest.raises(ClinicalParseError) as err:
        read_clinical(body)
    assert named in str(err.value) and "C-CDA" not in str(err.value).split(":")[0]
