"""One exception handler: every API error is JSON ``{"code", "message", "field", "errors"}``.

``field`` names the first field at fault (or null); ``errors`` maps each field to a list of
``{"code", "message"}``. Domain errors (illegal transitions) answer 409 with their code.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from pharmacy.errors import DomainError


def _flatten(details) -> dict[str, list[dict]]:
    """DRF's nested full details → {"field.sub[0]": [{"code", "message"}, …]}."""
    out: dict[str, list[dict]] = {}

    def is_leaf(node) -> bool:
        return isinstance(node, dict) and set(node) == {"message", "code"}

    def walk(node, path: str) -> None:
        if is_leaf(node):
            out.setdefault(path or "non_field_errors", []).append(
                {"code": str(node["code"]), "message": str(node["message"])}
            )
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            all_leaves = all(is_leaf(item) for item in node)
            for index, item in enumerate(node):
                walk(item, path if all_leaves else f"{path}[{index}]")
        else:
            out.setdefault(path or "non_field_errors", []).append({"code": "invalid", "message": str(node)})

    walk(details, "")
    return out


def error_body(code: str, message: str, errors: dict | None = None) -> dict:
    errors = errors or {}
    field = next((name for name in errors if name != "non_field_errors"), None)
    return {"code": code, "message": message, "field": field, "errors": errors}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()

    from pharmacy.db_outage import is_database_down

    if is_database_down(exc):  # the database is away: 503 with Retry-After (JSON; HL7 AE; FHIR; NCPDP 602)
        from pharmacy.db_outage import unavailable_response

        return unavailable_response(context.get("request"))
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, str(exc), exc.errors), status=exc.status_code)
    if isinstance(exc, IntegrityError):
        return Response(
            error_body("integrity_error", "The change conflicts with data already stored: " + str(exc).split("\n")[0]),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.get_full_details())
        first = next(iter(errors.items()), None)
        message = "Invalid input."
        if first:
            name, items = first
            message = f"{name}: {items[0]['message']}" if name != "non_field_errors" else items[0]["message"]
        response = Response(error_body("validation_error", message, errors), status=status.HTTP_400_BAD_REQUEST)
        return response

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    code = "error"
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
    response.data = error_body(code, str(detail) if detail is not None else "Error.")
    return response
