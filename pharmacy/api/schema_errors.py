"""OpenAPI errors: every operation documents every status it can answer (issue 14 item 7), each error
with the one error shape of ``pharmacy.api.exceptions`` — ``{"code", "message", "field", "errors"}``.

A drf-spectacular postprocessing hook adds, where the view did not describe them itself:
400 (invalid input, filters or paging), 401 (no or bad credentials), 403 (role or object not
allowed), 404 (no such object, or not yours), 405 (method not allowed), 409 (illegal transition or
conflict, on writes), 413 (body over RXHUB_MAX_INBOUND_BYTES, on writes), 415 (unsupported media
type, on writes), 429 (throttled), 503 (database unavailable; with Retry-After)."""
from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a machine-readable code, a message, the first field at fault and "
                   "each field's errors.",
    "properties": {
        "code": {"type": "string", "example": "validation_error"},
        "message": {"type": "string"},
        "field": {"type": "string", "nullable": True},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"]}}},
    },
    "required": ["code", "message", "field", "errors"],
}

ALWAYS = {
    "400": "Invalid input, filter or page (the error names the field).",
    "401": "No credentials, or an unknown or revoked token.",
    "403": "Your role (or your partner binding) does not allow this.",
    "404": "No such object, or not one you may see.",
    "405": "Method not allowed on this path.",
    "429": "Too many requests (throttled).",
    "503": "The database is unavailable; retry after the Retry-After header.",
}
WRITES = {
    "409": "Illegal transition or a conflict with stored data (the code says which).",
    "413": "The body is larger than the configured limit.",
    "415": "Unsupported media type.",
}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = dict(ALWAYS)
            if method in {"post", "put", "patch", "delete"}:
                wanted.update(WRITES)
            for status, described in list(responses.items()):
                # A view that describes an error status itself (its own 403 text) still answers
                # with the one error shape.
                if str(status)[:1] in "45" and "content" not in described:
                    described["content"] = {"application/json": {"schema": ref}}
            for status, description in wanted.items():
                if status in responses:
                    continue
                answer = {"description": description, "content": {"application/json": {"schema": ref}}}
                if status == "503":
                    answer["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                         "description": "Seconds to wait before retrying."}}
                responses[status] = answer
    return result
