"""Reconciliation endpoints under /api/v1/: inbound channels (HL7 v2, FHIR R4, C-CDA over HTTP),
inbound messages with retry, reconciliation tasks, and discrepancy accept/reject."""
from __future__ import annotations

import json

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from pharmacy.access import mark_phi_access
from pharmacy.api.views import PhiReadMixin
from pharmacy.inbound import RETRY_AFTER_SECONDS, read_body_capped
from pharmacy.interop.fhir import operation_outcome
from pharmacy.interop.hl7v2 import build_ack
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, TECHNICIAN
from reconciliation import selectors, services
from reconciliation.choices import Channel
from reconciliation.conf import conf
from reconciliation.filters import InboundMessageFilter, ReconciliationTaskFilter
from reconciliation.models import Discrepancy

from . import serializers as s

STAFF = {PHARMACIST, TECHNICIAN, ADMIN}
FEEDS = {INTEGRATOR, ADMIN}


class RawBodyParser(parsers.BaseParser):
    """Any content type: the body is stored as received (store first, parse later). The views read
    it themselves, capped at the size limit (``read_body_capped``); this parser names the media."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(conf("RECON_MAX_PAYLOAD_BYTES") + 1) if stream is not None else b""


DATABASE_DOWN = (OperationalError, InterfaceError)
UNAVAILABLE = "database unavailable; the message was not stored, resend later"


class _FeedView(APIView):
    parser_classes = [RawBodyParser]
    allowed_roles = {"write": FEEDS}
    channel = ""

    def _body(self, request) -> tuple[bytes, int]:
        # Never more than limit + 1 bytes are read, however large the body (store first, capped).
        return read_body_capped(request, conf("RECON_MAX_PAYLOAD_BYTES"))

    def _ingest(self, request, body: bytes, size: int):
        return services.ingest(channel=self.channel, payload=body, content_type=request.content_type or "",
                               sender=f"api:{request.user.get_username()}", size=size)


class HL7View(_FeedView):
    """HL7 v2 message as the text body; the answer is the HL7 ACK (AA processed, AE failed and kept
    for retry, AR unreadable), sent after the message was committed."""

    channel = Channel.HTTP_HL7

    @extend_schema(request={"application/hl7-v2": {"type": "string"}, "text/plain": {"type": "string"}},
                   responses={(200, "application/hl7-v2"): OpenApiResponse(description="ACK with MSA-1 AA or AE"),
                              (400, "application/hl7-v2"): OpenApiResponse(description="ACK with MSA-1 AR"),
                              (413, "application/hl7-v2"): OpenApiResponse(description="ACK with MSA-1 AR (too large)"),
                              (503, "application/hl7-v2"): OpenApiResponse(
                                  description="ACK with MSA-1 AE: database unavailable (Retry-After)")})
    def post(self, request):
        body, size = self._body(request)
        status_code = 200
        try:
            result = self._ingest(request, body, size)
            ack = build_ack(body, result.ack_code, result.error)
            if result.ack_code == "AR":
                status_code = 413 if result.message.payload_truncated else 400
        except DATABASE_DOWN:
            # HL7 v2.5.1 §2.9.2: AE — the message could not be accepted now; the sender resends.
            ack, status_code = build_ack(body, "AE", UNAVAILABLE), 503
        response = HttpResponse(ack.replace("\r", "\r\n") if request.query_params.get("crlf") else ack,
                                status=status_code, content_type="application/hl7-v2")
        if status_code == 503:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class FHIRView(_FeedView):
    """A FHIR R4 Bundle or single resource (JSON). Invalid input → 400 with an OperationOutcome that
    names the element; accepted input → 201 with the stored message's state."""

    channel = Channel.HTTP_FHIR

    @extend_schema(request={"application/fhir+json": {"type": "object"}, "application/json": {"type": "object"}},
                   responses={201: s.IngestAnswerSerializer,
                              400: OpenApiResponse(description="OperationOutcome naming the element"),
                              413: OpenApiResponse(description="OperationOutcome: too large"),
                              503: OpenApiResponse(description="OperationOutcome transient (Retry-After)")},
                   examples=[OpenApiExample("Bundle", value={"resourceType": "Bundle", "type": "collection",
                                                             "entry": []}, request_only=True)])
    def post(self, request):
        body, size = self._body(request)
        try:
            result = self._ingest(request, body, size)
        except DATABASE_DOWN:
            outcome = operation_outcome(UNAVAILABLE)
            outcome["issue"][0]["code"] = "transient"  # FHIR R4 issue-type: transient, try again later
            response = HttpResponse(json.dumps(outcome), status=503, content_type="application/fhir+json")
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return _answer(result, fhir=True)


class DocumentView(_FeedView):
    """A C-CDA R2.1 document (XML: CCD, Discharge Summary, Transfer Summary)."""

    channel = Channel.HTTP_DOCUMENT

    @extend_schema(
        request={"application/xml": {"type": "string"}, "text/xml": {"type": "string"}},
        responses={201: s.IngestAnswerSerializer, 400: OpenApiResponse(description="Error naming the fault"),
                   413: OpenApiResponse(description="Error: too large"),
                   503: OpenApiResponse(description="Error: database unavailable (Retry-After)")},
    )
    def post(self, request):
        body, size = self._body(request)
        return _answer(self._ingest(request, body, size), fhir=False)  # database down → JSON 503 (handler)


def _answer(result, *, fhir: bool):
    message = result.message
    if result.ack_code == "AR":
        code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if message.payload_truncated else status.HTTP_400_BAD_REQUEST
        if fhir:
            outcome = operation_outcome(result.error)
            if message.payload_truncated:
                outcome["issue"][0]["code"] = "too-costly"
            return HttpResponse(json.dumps(outcome), status=code, content_type="application/fhir+json")
        return Response({"code": "payload_too_large" if message.payload_truncated else "unreadable",
                         "message": result.error, "field": None, "errors": {}, "id": message.pk}, status=code)
    data = {"id": message.pk, "status": message.status, "error": message.error,
            "tasks": list(message.summary.get("tasks", [])) if isinstance(message.summary, dict) else []}
    return Response(data, status=status.HTTP_201_CREATED)


class InboundMessageViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored inbound messages (filters: status, type, sender, channel); failed ones can be retried."""

    filterset_class = InboundMessageFilter
    allowed_roles = {"read": STAFF | {INTEGRATOR}, "retry": STAFF | {INTEGRATOR}}

    def get_queryset(self):
        qs = selectors.inbound_list(user=self.request.user)
        return qs.defer(None) if self.action != "list" else qs

    def get_serializer_class(self):
        return s.InboundMessageSerializer if self.action == "list" else s.InboundMessageDetailSerializer

    @extend_schema(request=None, responses=s.InboundMessageDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        message = services.inbound_retry(message_id=self.get_object().pk, actor=request.user)
        message.refresh_from_db()
        return Response(s.InboundMessageDetailSerializer(message).data)


class ReconciliationTaskViewSet(PhiReadMixin, viewsets.ReadOnlyModelViewSet):
    """Reconciliation tasks by priority then age, each with its discrepancies."""

    serializer_class = s.ReconciliationTaskSerializer
    filterset_class = ReconciliationTaskFilter
    allowed_roles = {"read": STAFF}

    def get_queryset(self):
        return selectors.task_list(user=self.request.user).prefetch_related("discrepancies")

    phi_what = "reconciliation task"


class DiscrepancyViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One discrepancy; a pharmacist accepts (applies the change) or rejects it, with a note."""

    serializer_class = s.DiscrepancySerializer
    queryset = Discrepancy.objects.select_related("task").order_by("id")
    allowed_roles = {"read": STAFF, "accept": {PHARMACIST, ADMIN}, "reject": {PHARMACIST, ADMIN}}

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        mark_phi_access(request, [obj.task.patient_id], f"API discrepancy {obj.pk}")
        return Response(self.get_serializer(obj).data)

    @extend_schema(request=s.DecisionSerializer, responses=s.DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        data = s.DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = services.discrepancy_accept(discrepancy_id=self.get_object().pk, actor=request.user,
                                        note=data.validated_data["note"])
        d.refresh_from_db()
        return Response(s.DiscrepancySerializer(d).data)

    @extend_schema(request=s.DecisionSerializer, responses=s.DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = s.DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = services.discrepancy_reject(discrepancy_id=self.get_object().pk, actor=request.user,
                                        note=data.validated_data["note"])
        d.refresh_from_db()
        return Response(s.DiscrepancySerializer(d).data)
