"""Bounded hypothesis runs: every reader (HL7 v2, FHIR, C-CDA, NCPDP SCRIPT) refuses junk with its
own parse error, and every inbound endpoint answers junk without a 5xx and stores it."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pharmacy.interop import ncpdp
from pharmacy.interop.clinical import ClinicalParseError
from pharmacy.interop.detect import read_clinical

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
HEADS = [b"MSH|^~\\&|", b"MSH|", b"FHS|^~\\&|", b'{"resourceType": "Bundle", "entry": ', b"{", b"<?xml ", b"<",
         b'<ClinicalDocument xmlns="urn:hl7-org:v3">', b"<Message><Header>", b"\xef\xbb\xbf", b"\xff\xfe"]
payloads = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda head, tail: head + tail, st.sampled_from(HEADS), st.binary(max_size=400)),
    st.builds(lambda head, tail: head + tail.encode("utf-8", "surrogatepass"), st.sampled_from(HEADS),
              st.text(max_size=200)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda v: json.dumps({"resourceType": "Bundle", "id": "f", "entry": v}).encode(), json_values),
)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(payloads)
def test_clinical_readers_raise_only_their_parse_error(data):
    try:
        read_clinical(data)
    except ClinicalParseError:
        pass


@FUZZ
@given(payloads)
def test_ncpdp_reader_raises_only_script_error(data):
    try:
        ncpdp.parse_message(data)
    except ncpdp.ScriptError:
        pass


ENDPOINTS = ["/api/v1/hl7/", "/api/v1/fhir/", "/api/v1/documents/", "/api/v1/ncpdp/",
             "/api/v1/refill-requests/intake/", "/api/v1/claim-rejections/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENDPOINTS)
def test_inbound_endpoints_never_answer_5xx(api_client_for, url):
    from pharmacy.models import RefusedPayload
    from reconciliation.models import InboundMessage
    from refills.models import InboundNcpdpMessage

    client = api_client_for("integrator")
    content_type = "application/json" if "intake" in url or "claim" in url else "application/octet-stream"

    def stored() -> int:
        return InboundMessage.objects.count() + InboundNcpdpMessage.objects.count() + RefusedPayload.objects.count()

    @settings(max_examples=30, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(payloads)
    def post(data):
        before = stored()
        response = client.post(url, data=data, content_type=content_type)
        assert response.status_code < 500, (response.status_code, data[:200], response.content[:300])
        refused_unread = content_type == "application/json" and (
            response.status_code == 413 or (response.status_code == 400 and response.json()["code"] == "parse_error"))
        if content_type != "application/json" or refused_unread:
            assert stored() == before + 1  # store-first: whatever it was, it is on file

    post()
