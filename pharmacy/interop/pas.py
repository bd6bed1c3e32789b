"""Da Vinci PAS (Prior Authorization Support) request and response, FHIR R4 JSON. Pure.

STANDARDS.md "Prior authorization rules and FHIR guides": ``POST [base]/Claim/$submit`` with a
Bundle whose first entry is a PAS Claim (use ``preauthorization``); the payer answers with a
Bundle holding a ClaimResponse; the outcome is
``ClaimResponse.item.adjudication.extension(reviewAction).code`` with X12 306 codes A1 certified,
A3 not certified, A4 pended. PAS covers medical-benefit drugs only.

Simplified: the profile URLs and extension shapes follow the PAS IG as we read it (reviewAction
with ``code``/``number`` sub-extensions); we test that the bundle validates against the FHIR R4
resource models (fhir.resources R4B package: R4B's Bundle/Claim/Coverage are R4-compatible for
the elements used here), not against the PAS profiles.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

PAS_BASE = "http://hl7.org/fhir/us/davinci-pas"
CLAIM_PROFILE = f"{PAS_BASE}/StructureDefinition/profile-claim"
BUNDLE_PROFILE = f"{PAS_BASE}/StructureDefinition/profile-pas-request-bundle"
REVIEW_ACTION_URL = f"{PAS_BASE}/StructureDefinition/extension-reviewAction"
X12_306_SYSTEM = "https://codesystem.x12.org/005010/306"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"

#: X12 306 review action codes (STANDARDS.md): A1 certified, A3 not certified, A4 pended.
REVIEW_ACTIONS: dict[str, str] = {"A1": "approved", "A3": "denied", "A4": "pended"}
MAX_BYTES = 2_000_000


class PASError(ValueError):
    """A PAS answer we cannot read; the message names the element at fault."""


@dataclass
class PASRequest:
    claim_id: str
    patient_id: str
    patient_family: str
    patient_given: str
    birth_date: date
    gender: str  # male | female | other | unknown
    member_id: str
    payer_name: str
    payer_id: str  # BIN or payer identifier
    prescriber_npi: str
    prescriber_family: str
    prescriber_given: str
    ndc: str
    drug_description: str
    quantity: Decimal
    days_supply: int
    diagnosis_codes: list[str] = field(default_factory=list)
    letter: str = ""
    expedited: bool = False
    created: datetime | None = None
    related_claim_id: str = ""  # an appeal/resubmission refers to the earlier claim
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (title, mime, data)


PAS_SUPPORTING_INFO = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASSupportingInfoType"
X12_SERVICE_TYPE = "https://codesystem.x12.org/005010/1365"
X12_REQUEST_TYPE = "https://codesystem.x12.org/005010/1525"
X12_CERTIFICATION_TYPE = "https://codesystem.x12.org/005010/1322"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def build_claim_bundle(req: PASRequest) -> dict:
    """The ``Claim/$submit`` input Bundle (type collection, Claim first)."""
    import base64

    created = (req.created or datetime.now().astimezone()).isoformat(timespec="seconds")
    urls = {k: _urn() for k in ("claim", "patient", "practitioner", "insurer", "coverage")}
    supporting = []
    if req.letter:
        supporting.append(
            {
                "sequence": 1,
                "category": {
                    "coding": [
                        {
                            "system": PAS_SUPPORTING_INFO,
                            "code": "freeFormMessage",
                        }
                    ],
                    "text": "Medical necessity letter",
                },
                "valueString": req.letter,
            }
        )
    for title, mime, data in req.attachments:
        supporting.append(
            {
                "sequence": len(supporting) + 1,
                "category": {"coding": [{"system": PAS_SUPPORTING_INFO, "code": "additionalInformation"}],
                             "text": "attachment"},
                "valueAttachment": {
                    "contentType": mime,
                    "title": title,
                    "data": base64.b64encode(data).decode("ascii"),
                },
            }
        )
    claim = {
        "resourceType": "Claim",
        "id": req.claim_id,
        "meta": {"profile": [CLAIM_PROFILE]},
        "identifier": [{"system": "urn:rxhub:pa-claim", "value": req.claim_id}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "preauthorization",
        "patient": {"reference": urls["patient"]},
        "created": created,
        "insurer": {"reference": urls["insurer"]},
        "provider": {"reference": urls["practitioner"]},
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "stat" if req.expedited else "normal",
                }
            ]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": urls["coverage"]}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": NDC_SYSTEM, "code": req.ndc, "display": req.drug_description}],
                    "text": req.drug_description,
                },
                "quantity": {"value": float(req.quantity)},
                # PAS Claim item.category 1..1: X12 service type code 88 "Pharmacy"
                "category": {"coding": [{"system": X12_SERVICE_TYPE, "code": "88", "display": "Pharmacy"}]},
                "extension": [
                    {
                        "url": f"{PAS_BASE}/StructureDefinition/extension-serviceItemRequestType",
                        "valueCodeableConcept": {
                            "coding": [{"system": X12_REQUEST_TYPE, "code": "HS", "display": "Health Services Review"}],
                            "text": f"{req.days_supply} days supply",
                        },
                    },
                    {
                        # PAS extension-certificationType (X12 1322): I initial, R renewal
                        "url": f"{PAS_BASE}/StructureDefinition/extension-certificationType",
                        "valueCodeableConcept": {"coding": [{"system": X12_CERTIFICATION_TYPE,
                                                             "code": "R" if req.related_claim_id else "I"}]},
                    },
                ],
            }
        ],
    }
    if req.diagnosis_codes:
        claim["diagnosis"] = [
            {
                "sequence": i + 1,
                "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM_SYSTEM, "code": code}]},
            }
            for i, code in enumerate(req.diagnosis_codes)
        ]
        claim["item"][0]["diagnosisSequence"] = list(range(1, len(req.diagnosis_codes) + 1))
    if supporting:
        claim["supportingInfo"] = supporting
        claim["item"][0]["informationSequence"] = [s["sequence"] for s in supporting]
    if req.related_claim_id:
        claim["related"] = [
            {
                "claim": {"identifier": {"system": "urn:rxhub:pa-claim", "value": req.related_claim_id}},
                "relationship": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/related-claim-relationship",
                            "code": "prior",
                        }
                    ]
                },
            }
        ]
    patient = {
        "resourceType": "Patient",
        "name": [{"family": req.patient_family, "given": [req.patient_given]}],
        "gender": req.gender,
        "birthDate": req.birth_date.isoformat(),
        "identifier": [{"system": "urn:rxhub:patient", "value": req.patient_id}],
    }
    practitioner = {
        "resourceType": "Practitioner",
        "identifier": [{"system": NPI_SYSTEM, "value": req.prescriber_npi}] if req.prescriber_npi else [],
        "name": [{"family": req.prescriber_family, "given": [req.prescriber_given]}],
    }
    insurer = {
        "resourceType": "Organization",
        "name": req.payer_name,
        "identifier": [{"system": "urn:rxhub:payer", "value": req.payer_id}],
    }
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "subscriberId": req.member_id,
        "beneficiary": {"reference": urls["patient"]},
        "payor": [{"reference": urls["insurer"]}],
    }
    # Every entry has a fullUrl and its resource the matching id (PAS Request Bundle; FHIR R4 Bundle bdl-7)
    for key, resource in (("claim", claim), ("patient", patient), ("practitioner", practitioner),
                          ("insurer", insurer), ("coverage", coverage)):
        resource.setdefault("id", urls[key].rsplit(":", 1)[-1])
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [BUNDLE_PROFILE]},
        "identifier": {"system": "urn:rxhub:pa-bundle", "value": req.claim_id},
        "type": "collection",
        "timestamp": created,
        "entry": [
            {"fullUrl": urls["claim"], "resource": claim},
            {"fullUrl": urls["patient"], "resource": patient},
            {"fullUrl": urls["practitioner"], "resource": practitioner},
            {"fullUrl": urls["insurer"], "resource": insurer},
            {"fullUrl": urls["coverage"], "resource": coverage},
        ],
    }


@dataclass
class PASOutcome:
    decision: str  # approved | denied | pended
    review_code: str
    authorization_number: str = ""
    effective_date: date | None = None
    expiration_date: date | None = None
    reasons: list[str] = field(default_factory=list)
    claim_response_id: str = ""


def _date(value, where: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise PASError(f"{where}: not a date ({value!r})") from exc


def parse_claim_response(text: str | bytes | dict) -> PASOutcome:
    """Read the payer's answer Bundle (or a bare ClaimResponse)."""
    if isinstance(text, dict):
        data = text
    else:
        if len(text) > MAX_BYTES:
            raise PASError("response larger than the size limit")
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise PASError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PASError("root: not a JSON object")
    if data.get("resourceType") == "Bundle":
        found = [
            e.get("resource")
            for e in data.get("entry") or []
            if isinstance(e, dict)
            and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "ClaimResponse"
        ]
        if not found:
            raise PASError("Bundle.entry: no ClaimResponse")
        cr = found[0]
    elif data.get("resourceType") == "ClaimResponse":
        cr = data
    else:
        raise PASError(f"resourceType: expected Bundle or ClaimResponse, got {data.get('resourceType')!r}")
    code, number, reasons = "", "", []
    for item in cr.get("item") or []:
        for adj in item.get("adjudication") or []:
            for ext in adj.get("extension") or []:
                if ext.get("url") != REVIEW_ACTION_URL:
                    continue
                for sub in ext.get("extension") or []:
                    if sub.get("url") == "code":
                        codings = (sub.get("valueCodeableConcept") or {}).get("coding") or []
                        code = code or next((c.get("code", "") for c in codings), "")
                    elif sub.get("url") == "number":
                        number = number or sub.get("valueString", "")
                    elif sub.get("url") == "reasonCode":
                        concept = sub.get("valueCodeableConcept") or {}
                        text_ = concept.get("text") or next(
                            (c.get("display") or c.get("code") for c in concept.get("coding") or []), ""
                        )
                        if text_:
                            reasons.append(text_)
    if not code:
        raise PASError("ClaimResponse.item.adjudication.extension(reviewAction).code: missing")
    if code not in REVIEW_ACTIONS:
        raise PASError(f"reviewAction code {code!r} is not one of {sorted(REVIEW_ACTIONS)}")
    if cr.get("disposition") and code == "A3":
        reasons.append(cr["disposition"])
    period = cr.get("preAuthPeriod") or {}
    outcome = PASOutcome(
        decision=REVIEW_ACTIONS[code],
        review_code=code,
        authorization_number=number or cr.get("preAuthRef", ""),
        effective_date=_date(period.get("start"), "ClaimResponse.preAuthPeriod.start"),
        expiration_date=_date(period.get("end"), "ClaimResponse.preAuthPeriod.end"),
        reasons=reasons,
        claim_response_id=str(cr.get("id", "")),
    )
    if outcome.decision == "approved" and not outcome.authorization_number:
        raise PASError("ClaimResponse.preAuthRef: an approval needs an authorization number")
    return outcome


def build_claim_response(
    *,
    code: str,
    authorization_number: str = "",
    start: date | None = None,
    end: date | None = None,
    reason: str = "",
    claim_ref: str = "urn:uuid:claim",
) -> dict:
    """A payer's answer Bundle (for simulators and tests)."""
    ext = [{"url": "code", "valueCodeableConcept": {"coding": [{"system": X12_306_SYSTEM, "code": code}]}}]
    if authorization_number:
        ext.append({"url": "number", "valueString": authorization_number})
    if reason:
        ext.append({"url": "reasonCode", "valueCodeableConcept": {"text": reason}})
    cr = {
        "resourceType": "ClaimResponse",
        "id": uuid.uuid4().hex[:16],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "preauthorization",
        "patient": {"reference": "urn:uuid:patient"},
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "insurer": {"reference": "urn:uuid:insurer"},
        "request": {"reference": claim_ref},
        "outcome": "complete" if code != "A4" else "queued",
        "item": [
            {
                "itemSequence": 1,
                "adjudication": [
                    {
                        "category": {"coding": [{"code": "submitted"}]},
                        "extension": [{"url": REVIEW_ACTION_URL, "extension": ext}],
                    }
                ],
            }
        ],
    }
    if authorization_number:
        cr["preAuthRef"] = authorization_number
    if start or end:
        cr["preAuthPeriod"] = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v}
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:cr", "resource": cr}],
    }
