"""Hostile JSON on the JSON inbound endpoints (refill intake, claim rejections): stored as a
RefusedPayload with its error and answered 400/413 in the API's error shape — never a 500."""
from __future__ import annotations

import pytest

from pharmacy.models import RefusedPayload

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/refill-requests/intake/", "/api/v1/claim-rejections/"]
BODIES = [
    (b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "too_deep"),
    (b'{"channel": "sms", "sender": "+15550100", "text": "\\ud800"}', 400, "invalid_unicode"),
    (b'{"claim_reference": "\\udfff"}', 400, "invalid_unicode"),
    (b'{"text": "caf\xe9"}', 400, "invalid_encoding"),
    (b'{"text": NaN}', 400, "parse_error"),
    (b'{"text": ', 400, "parse_error"),
]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(("body", "status", "code"), BODIES,
                         ids=["nested", "surrogate", "surrogate-2", "latin1", "nan", "truncated"])
def test_hostile_json_is_stored_and_answered_400(api_client_for, url, body, status, code):
    response = api_client_for("integrator").post(url, data=body, content_type="application/json")
    assert response.status_code == status, response.content[:300]
    assert response.json()["code"] == "parse_error" and response.json()["message"].startswith("JSON parse error")
    refused = RefusedPayload.objects.get()
    assert (refused.path, refused.method, refused.error_code, refused.size_bytes) == (url, "POST", code, len(body))
    assert refused.received_by is not None and refused.error and len(refused.payload_sha256) == 64


@pytest.mark.parametrize("url", ENDPOINTS)
def test_oversize_json_is_stored_cut_and_answered_413(api_client_for, settings, url):
    settings.RXHUB = {**settings.RXHUB, "MAX_INBOUND_BYTES": 2000}
    body = b'{"text": "' + b"a" * 10_000 + b'"}'
    response = api_client_for("integrator").post(url, data=body, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    refused = RefusedPayload.objects.get()
    assert (refused.size_bytes, refused.payload_truncated, len(refused.payload)) == (len(body), True, 2000)


def test_ordinary_json_still_parses(api_client_for):
    response = api_client_for("integrator").post("/api/v1/claim-rejections/", data={"claim_reference": "C-1"},
                                                 format="json")
    assert response.status_code == 400 and response.json()["code"] == "validation_error"  # fields missing
    assert not RefusedPayload.objects.exists()
