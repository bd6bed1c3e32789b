"""JSON for untrusted API bodies: read capped at the size limit (never the whole of a huge body),
nesting bounded, lone surrogates and invalid UTF-8 refused — and every refused body stored
(``RefusedPayload``) before the 400/413 answer, in the API's JSON error shape."""
from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from pharmacy.inbound import PayloadError, clean_text, conf, json_loads_safe, payload_sha256


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "Request body too large."


def refuse(request, *, raw: bytes, size: int, code: str, error: str) -> None:
    """Stage 1 of the inbound pipeline for a body no reader will see: keep it with its error."""
    from pharmacy.actors import system_actor
    from pharmacy.inbound import store
    from pharmacy.models import RefusedPayload

    django_request = getattr(request, "_request", request)
    user = getattr(django_request, "user", None)
    kept = raw[: int(conf("MAX_INBOUND_BYTES"))]
    store(RefusedPayload(
        path=clean_text(django_request.path)[:300], method=django_request.method[:10],
        received_by=user if getattr(user, "is_authenticated", False) else None,
        content_type=clean_text(django_request.META.get("CONTENT_TYPE", ""))[:100], size_bytes=size,
        payload=clean_text(kept.decode("utf-8", "replace")), payload_truncated=len(kept) < size,
        payload_sha256=payload_sha256(kept), error_code=code[:32], error=clean_text(error)[:4000],
    ), actor=system_actor("system:inbound"), reason=f"Refused API body: {error}"[:500])


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = int(conf("MAX_INBOUND_BYTES"))
        raw = stream.read(limit + 1) if stream is not None else b""
        try:
            declared = int(getattr(request, "META", {}).get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        size = max(declared, len(raw))
        if size > limit:
            error = f"request body of {size} bytes exceeds the {limit}-byte limit"
            refuse(request, raw=raw, size=size, code="payload_too_large", error=error)
            raise PayloadTooLarge(error)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            refuse(request, raw=raw, size=size, code="invalid_encoding", error=f"body is not {encoding}: {exc}")
            raise exceptions.ParseError(f"JSON parse error - body is not {encoding} text") from exc
        try:
            return json_loads_safe(text, parse_constant=_refuse_constant)
        except PayloadError as exc:
            refuse(request, raw=raw, size=size, code=exc.code, error=str(exc))
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259 §6)")
