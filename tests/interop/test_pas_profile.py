"""Da Vinci PAS (v2.0.1) request Bundle: the profile's required elements (Claim.provider resolving
in the Bundle, item.category, the certificationType and serviceItemRequestType extensions, entry
fullUrls and resource ids, coded supportingInfo categories from PASSupportingInfoType)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pharmacy.interop.pas import (
    PAS_SUPPORTING_INFO,
    X12_CERTIFICATION_TYPE,
    X12_SERVICE_TYPE,
    PASRequest,
    build_claim_bundle,
)


@pytest.fixture(autouse=True)
def _plain_http():
    yield


def _request(**kw) -> PASRequest:
    base = dict(claim_id="PA-1", patient_id="P1", patient_family="Lee", patient_given="Ann",
                birth_date=date(1960, 1, 5), gender="female", member_id="M-9", payer_name="Acme Health",
                payer_id="610014", prescriber_npi="1234567893", prescriber_family="Smith", prescriber_given="Jo",
                ndc="00169413512", drug_description="Ozempic 0.25 mg pen", quantity=Decimal("1.5"), days_supply=28,
                diagnosis_codes=["E11.9"], letter="Metformin failed", attachments=[("labs", "text/plain", b"A1c 9")])
    base.update(kw)
    return PASRequest(**base)


def test_every_entry_has_a_full_url_and_an_id_and_references_resolve():
    bundle = build_claim_bundle(_request())
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert len(urls) == len(bundle["entry"])
    for entry in bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:") and entry["resource"].get("id")
    claim = bundle["entry"][0]["resource"]
    assert claim["resourceType"] == "Claim" and claim["use"] == "preauthorization"
    for ref in (claim["provider"], claim["patient"], claim["insurer"], claim["insurance"][0]["coverage"]):
        assert ref["reference"] in urls
    provider = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == claim["provider"]["reference"])
    assert provider["resourceType"] in ("Practitioner", "Organization", "PractitionerRole")


def test_item_category_and_certification_type():
    item = build_claim_bundle(_request())["entry"][0]["resource"]["item"][0]
    assert item["category"]["coding"][0] == {"system": X12_SERVICE_TYPE, "code": "88", "display": "Pharmacy"}
    by_url = {e["url"].rsplit("/", 1)[-1]: e for e in item["extension"]}
    cert = by_url["extension-certificationType"]["valueCodeableConcept"]["coding"][0]
    assert cert == {"system": X12_CERTIFICATION_TYPE, "code": "I"}
    assert by_url["extension-serviceItemRequestType"]["valueCodeableConcept"]["coding"][0]["code"] == "HS"
    renewal = build_claim_bundle(_request(related_claim_id="PA-0"))["entry"][0]["resource"]["item"][0]
    assert {e["url"].rsplit("/", 1)[-1]: e for e in renewal["extension"]}["extension-certificationType"][
        "valueCodeableConcept"]["coding"][0]["code"] == "R"


def test_supporting_info_categories_are_coded():
    claim = build_claim_bundle(_request())["entry"][0]["resource"]
    codes = [(s["category"]["coding"][0]["system"], s["category"]["coding"][0]["code"])
             for s in claim["supportingInfo"]]
    assert codes == [(PAS_SUPPORTING_INFO, "freeFormMessage"), (PAS_SUPPORTING_INFO, "additionalInformation")]
    assert claim["item"][0]["informationSequence"] == [1, 2]
