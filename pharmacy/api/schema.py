"""OpenAPI grouping: every operation is tagged with the app it belongs to (refills, prior
authorization, reconciliation, audit, core) and carries a summary and a description of its own
(a viewset's docstring alone would repeat the same text on list, read and each action)."""
from __future__ import annotations

import re

APP_TAGS = [
    {"name": "refills", "description": "Refill and renewal requests, patient intake, NCPDP SCRIPT from pharmacies."},
    {"name": "prior authorization", "description": "PA cases opened from claim rejections (NCPDP reject 75), "
                                                   "payer responses."},
    {"name": "reconciliation", "description": "Inbound EHR data (HL7 v2, FHIR R4, C-CDA), reconciliation tasks "
                                              "and their discrepancies."},
    {"name": "audit", "description": "History and the audit trail (read in the browser at /audit/; exports are "
                                     "CSV downloads)."},
    {"name": "core", "description": "Patients, prescribers, pharmacies, drugs, prescriptions and clinical records; "
                                    "outbound messages; API tokens."},
]

# First path segment after /api/v1/ → app.
SEGMENT_APP = {
    "refill-requests": "refills", "ncpdp": "refills", "intake": "refills",
    "pa-cases": "prior authorization", "pa-responses": "prior authorization",
    "claim-rejections": "prior authorization", "payers": "prior authorization",
    "inbound-messages": "reconciliation", "reconciliation-tasks": "reconciliation", "discrepancies": "reconciliation",
    "hl7": "reconciliation", "fhir": "reconciliation", "documents": "reconciliation",
    "audit-events": "audit", "history": "audit",
}

VERBS = {"get": "Read", "post": "Send", "put": "Replace", "patch": "Change", "delete": "Remove"}


def app_for(path: str) -> str:
    match = re.match(r"^/api/v1/([^/]+)/", path)
    return SEGMENT_APP.get(match.group(1), "core") if match else "core"


def _resource(path: str) -> str:
    match = re.match(r"^/api/v1/([^/]+)/", path)
    return (match.group(1) if match else path).replace("-", " ")


def _summary(path: str, method: str) -> str:
    resource = _resource(path)
    action = re.search(r"/\{[^}]+\}/([a-z0-9_-]+)/$", path) or re.search(r"^/api/v1/[^/]+/([a-z0-9_-]+)/$", path)
    if action:
        return f"{action.group(1).replace('-', ' ').replace('_', ' ').capitalize()} ({resource})"
    if method == "get":
        return f"One of the {resource}" if "{" in path else f"List {resource}"
    return f"{VERBS.get(method, method.upper())} {resource}"


def group_by_app(result, generator, request, public):
    result["tags"] = APP_TAGS
    seen: dict[str, int] = {}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            description = (operation.get("description") or "").strip()
            seen[description] = seen.get(description, 0) + 1
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            operation["tags"] = [app_for(path)]
            summary = operation.get("summary") or _summary(path, method)
            operation["summary"] = summary
            description = (operation.get("description") or "").strip()
            if not description or seen.get(description, 0) > 1:
                lead = f"{summary}: `{method.upper()} {path}`."
                operation["description"] = f"{lead}\n\n{description}" if description else lead
    return result
