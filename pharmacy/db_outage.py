"""A database outage answers 503, not a 500: JSON with Retry-After under /api/ (the API's error
shape), an HL7 AE ACK on the HTTP HL7 channel, the styled 503 page elsewhere (RFC 9110 §15.6.4;
HL7 v2.5.1 §2.9.2 AE). Nothing here reaches the database, and nothing is cached: the next request
tries the database again, so the application resumes by itself when it returns.

``DatabaseUnavailableMiddleware`` (outermost) turns a view's OperationalError/InterfaceError into
that answer; one raised inside another middleware (sessions, the PHI access log …) has already
become a 500 by then, so ``mark_database_failure`` (a ``got_request_exception`` receiver) notes it on
the request and the middleware swaps the 500 for the 503.
"""
from __future__ import annotations

import json
import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from pharmacy.inbound import RETRY_AFTER_SECONDS

log = logging.getLogger("pharmacy.db_outage")
DATABASE_DOWN = (OperationalError, InterfaceError)
MESSAGE = "The database is not answering. Nothing was changed; try again shortly."


def is_database_down(exc: BaseException | None) -> bool:
    """The exception, or what it was raised from, is the database not answering."""
    while exc is not None:
        if isinstance(exc, DATABASE_DOWN):
            return True
        exc = exc.__cause__
    return False


def api_unavailable_body() -> dict:
    from pharmacy.api.exceptions import error_body

    return error_body("database_unavailable", MESSAGE)


NOT_STORED = "database unavailable; the message was not stored, resend later"


def _body_head(request) -> bytes:
    from pharmacy.inbound import read_body_capped

    try:
        return read_body_capped(request)[0]
    except Exception:  # noqa: BLE001 — an unreadable body still gets its answer
        return b""


def _ncpdp_error() -> str:
    try:
        from pharmacy.interop import ncpdp

        header = ncpdp.Header(to=ncpdp.Party("ZZZ", "UNKNOWN"), from_=ncpdp.Party("ZZZ", "RXHUB"),
                              message_id=ncpdp.new_message_id(), relates_to_message_id="UNKNOWN")
        return ncpdp.build_error(header=header, code="602", description=NOT_STORED)
    except Exception:  # noqa: BLE001 — then the API's JSON 503
        log.exception("NCPDP Error 602 could not be built")
        return ""


def unavailable_response(request) -> HttpResponse:
    """The 503 each channel understands (for a request that failed before its view answered)."""
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/v1/hl7/"):  # HL7 v2.5.1 §2.9.2: AE, the sender resends
        from pharmacy.interop.hl7v2 import build_ack

        ack = build_ack(_body_head(request), "AE", NOT_STORED)
        response = HttpResponse(ack, status=503, content_type="application/hl7-v2")
    elif path.startswith("/api/v1/fhir/"):  # FHIR R4 issue-type "transient"
        from pharmacy.interop.fhir import operation_outcome

        outcome = operation_outcome(NOT_STORED)
        outcome["issue"][0]["code"] = "transient"
        response = HttpResponse(json.dumps(outcome), status=503, content_type="application/fhir+json")
    elif path.startswith("/api/v1/ncpdp/") and (xml := _ncpdp_error()):  # NCPDP Error 602, receiver failure
        response = HttpResponse(xml, status=503, content_type="application/xml; charset=utf-8")
    elif path.startswith("/api/"):
        response = HttpResponse(json.dumps(api_unavailable_body()), status=503, content_type="application/json")
    else:
        try:
            from pharmacy.error_views import service_unavailable

            response = service_unavailable(request, reason=MESSAGE, retry_after=RETRY_AFTER_SECONDS)
        except Exception:  # noqa: BLE001 — the page must not fail too
            response = HttpResponse("<!doctype html><title>503 Service Unavailable</title><h1>Temporarily "
                                    "unavailable</h1><p>" + MESSAGE + "</p>", status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def mark_database_failure(sender, request=None, **kwargs) -> None:
    if request is not None and is_database_down(sys.exc_info()[1]):
        request._rxhub_database_down = True


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "_rxhub_database_down", False):
            log.warning("database unavailable: %s %s answered 503", request.method, request.path)
            return unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if is_database_down(exception):
            log.warning("database unavailable: %s %s answered 503 (%s)", request.method, request.path, exception)
            return unavailable_response(request)
        return None
