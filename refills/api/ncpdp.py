"""``POST /api/v1/ncpdp/``: pharmacies' NCPDP SCRIPT messages (integrator accounts), answered with
an NCPDP Status or Error message (refills/inbound.py does the work); ``GET
/api/v1/ncpdp/messages/`` lists what arrived and how it was answered."""
from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import BaseParser
from rest_framework.views import APIView

from pharmacy.inbound import RETRY_AFTER_SECONDS, read_body_capped
from pharmacy.interop import ncpdp
from pharmacy.roles import ADMIN, INTEGRATOR
from refills import inbound
from refills.models import InboundNcpdpMessage

XML = "application/xml"


class XmlPassthroughParser(BaseParser):
    """Declares the XML media type; the view reads the (size-capped) body itself."""

    media_type = XML

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover — never called
        return None


class NcpdpInboundView(APIView):
    """Receive one NCPDP SCRIPT 2017071 message (RxRenewalRequest, RxFill, CancelRxResponse,
    Status/Error/Verify). The answer is an NCPDP ``Status`` (010, HTTP 200) or ``Error`` (900
    rejected / 601 unable to process, HTTP 400 — 413 when larger than RXHUB MAX_INBOUND_BYTES;
    602 receiver error, HTTP 503 with Retry-After; Error 900 with HTTP 403 when the sending pharmacy is not bound to
    this account). A MessageID already processed for the same sender gets the same answer again
    and changes nothing."""

    allowed_roles = {"write": {INTEGRATOR}}
    parser_classes = [XmlPassthroughParser]

    @extend_schema(
        operation_id="ncpdp_inbound", request={XML: OpenApiTypes.STR},
        responses={(200, XML): OpenApiResponse(OpenApiTypes.STR, description="NCPDP Status 010"),
                   (400, XML): OpenApiResponse(OpenApiTypes.STR, description="NCPDP Error 900 / 601"),
                   (403, XML): OpenApiResponse(OpenApiTypes.STR,
                                               description="NCPDP Error 900 (sender not bound to this account)"),
                   (413, XML): OpenApiResponse(OpenApiTypes.STR, description="NCPDP Error 601 (too large)"),
                   (503, XML): OpenApiResponse(OpenApiTypes.STR,
                                               description="NCPDP Error 602 (receiver failure; Retry-After)")},
    )
    def post(self, request):
        limit = int(settings.RXHUB["MAX_INBOUND_BYTES"])
        body, size = read_body_capped(request, limit)  # never more than limit + 1 bytes read
        try:
            answer = inbound.ncpdp_inbound_receive(body=body, size=size, user=request.user, request=request)
        except (OperationalError, InterfaceError):
            # The database is away: nothing could be stored, so the pharmacy must resend (Error 602).
            xml = ncpdp.build_error(header=inbound._salvaged_reply_header(body), code="602",
                                    description="Receiver system error (database unavailable); resend later")
            response = HttpResponse(xml, status=503, content_type=f"{XML}; charset=utf-8")
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        response = HttpResponse(answer.xml, status=answer.http_status, content_type=f"{XML}; charset=utf-8")
        response["X-Inbound-Message-Id"] = str(answer.message.pk)
        if answer.http_status == 503:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class InboundNcpdpMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundNcpdpMessage
        fields = ["id", "received_at", "transaction", "sender", "message_id", "relates_to_message_id", "status",
                  "error_code", "error", "result", "http_status", "answer", "refill_request", "duplicate_of",
                  "size_bytes", "payload_truncated", "processed_at", "payload_sha256", "control_id_reused",
                  "attempts", "next_attempt_at"]
        read_only_fields = fields


class InboundNcpdpMessageList(generics.ListAPIView):
    """Inbound NCPDP messages, newest first, with our answer (payloads are not listed: they carry
    PHI; admins see them in Django admin)."""

    allowed_roles = {"read": {INTEGRATOR, ADMIN}}
    serializer_class = InboundNcpdpMessageSerializer
    filterset_fields = ["status", "transaction", "message_id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return InboundNcpdpMessage.objects.none()
        return inbound.inbound_list(user=self.request.user)
