"""CRUD endpoints for the core domain. Writes go through the serializers' history-stamping
save; deletes are refused (records are corrected or deactivated, never erased)."""
from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from pharmacy import filters, models, selectors
from pharmacy.access import mark_phi_access
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, PRESCRIBER, TECHNICIAN
from pharmacy.scoping import is_partner, is_prescriber_only, scope_patients, scope_to_pharmacy

from . import serializers as s

READ_ALL = {PHARMACIST, TECHNICIAN, PRESCRIBER, ADMIN, INTEGRATOR}
STAFF_WRITE = {PHARMACIST, TECHNICIAN, ADMIN, INTEGRATOR}
CLINICAL_WRITE = {PHARMACIST, ADMIN, INTEGRATOR}


class PhiReadMixin:
    """List and retrieve of a patient's data land in the PHI access log (HIPAA 45 CFR 164.312(b)).
    ``phi_what`` names the record ("refill request"); the patient comes from each row's
    "patient" or "prescription" field. Every app's viewset over patient data uses this."""

    phi_what: str | None = None

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        if self.phi_what:
            rows = response.data.get("results", []) if isinstance(response.data, dict) else response.data
            mark_phi_access(request, _patient_ids(rows), f"API {self.phi_what} list")
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        if self.phi_what:
            mark_phi_access(request, _patient_ids([response.data]), f"API {self.phi_what} {response.data.get('id')}")
        return response


class RecordViewSet(PhiReadMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """List, retrieve, create, update (no delete: history must stay whole)."""

    allowed_roles = {"read": READ_ALL, "write": STAFF_WRITE}
    ordering = ["id"]
    # How a row reaches its patient; a prescriber-only user then sees only their own patients' rows.
    patient_path: str | None = None
    # How a row reaches its pharmacy; a partner (integrator account) sees only its pharmacies' rows
    # (and, without a pharmacy path, only its pharmacies' patients' rows).
    pharmacy_path: str | None = None

    def get_queryset(self):
        qs = super().get_queryset()
        user = self.request.user
        if is_partner(user):
            if self.pharmacy_path:
                return scope_to_pharmacy(qs, user, pharmacy_path=self.pharmacy_path)
            if self.patient_path:
                return scope_patients(qs, user, patient_path=self.patient_path)
            return qs
        if self.patient_path and is_prescriber_only(user):
            qs = scope_patients(qs, user, patient_path=self.patient_path)
        return qs


def _patient_ids(rows) -> list[int]:
    ids = [row.get("patient") for row in rows if row.get("patient")]
    rx_ids = [row["prescription"] for row in rows if not row.get("patient") and row.get("prescription")]
    if rx_ids:  # fills name their prescription: one query for the page
        ids += list(models.Prescription.objects.filter(pk__in=rx_ids).values_list("patient_id", flat=True))
    return ids


class PatientViewSet(RecordViewSet):
    serializer_class = s.PatientSerializer
    filterset_class = filters.PatientFilter
    search_fields = ["last_name", "first_name", "mrn"]
    ordering_fields = ["last_name", "birth_date", "id", "last_visit_date"]

    def get_queryset(self):
        return selectors.patient_list(user=self.request.user).order_by("id")

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        mark_phi_access(request, [kwargs.get("pk")], "API patient record")
        return response

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", []) if isinstance(response.data, dict) else response.data
        mark_phi_access(request, [row["id"] for row in results], "API patient list")
        return response


PRESCRIBER_WRITE_403 = OpenApiResponse(description=(
    "Prescribers are shared reference data that every pharmacy relies on (NPI, DEA number, name, licence): "
    "only pharmacists and admins create or change them. An integrator account reads them and gets 403 on "
    "writes (issue 14 item 3)."))


@extend_schema_view(create=extend_schema(responses={201: s.PrescriberSerializer, 403: PRESCRIBER_WRITE_403}),
                    update=extend_schema(responses={200: s.PrescriberSerializer, 403: PRESCRIBER_WRITE_403}),
                    partial_update=extend_schema(responses={200: s.PrescriberSerializer,
                                                            403: PRESCRIBER_WRITE_403}))
class PrescriberViewSet(RecordViewSet):
    """Prescribers: one row per clinician for the whole chain, not per pharmacy. An integrator bound
    to one pharmacy must not rewrite the NPI/DEA/name that other pharmacies' prescriptions, NCPDP
    messages and EPCS checks (21 CFR 1306.03, 1311) rely on: writes are pharmacist and admin only.
    No integration writes prescribers through the API (an inbound NewRx with an unknown prescriber
    answers Error 900; readers match existing prescribers)."""

    serializer_class = s.PrescriberSerializer
    queryset = models.Prescriber.objects.select_related("practice").order_by("id")
    allowed_roles = {"read": READ_ALL, "write": {PHARMACIST, ADMIN}}
    filterset_fields = ["npi", "dea_number", "last_name", "is_veterinarian", "practice"]
    search_fields = ["last_name", "first_name", "npi"]


class PharmacyViewSet(RecordViewSet):
    serializer_class = s.PharmacySerializer
    queryset = models.Pharmacy.objects.order_by("id")
    pharmacy_path = "pk"
    # An integrator updates its own pharmacies (not their outbound endpoint: admin only) and creates none.
    allowed_roles = {"read": READ_ALL, "write": CLINICAL_WRITE, "create": {PHARMACIST, ADMIN}}
    filterset_fields = ["ncpdp_id", "npi", "is_active"]
    search_fields = ["name", "ncpdp_id"]


class DrugViewSet(RecordViewSet):
    serializer_class = s.DrugSerializer
    queryset = models.Drug.objects.order_by("id")
    allowed_roles = {"read": READ_ALL, "write": {PHARMACIST, ADMIN}}
    filterset_class = filters.DrugFilter
    search_fields = ["name"]


class PrescriptionViewSet(RecordViewSet):
    phi_what = "prescription"
    patient_path = "patient"
    pharmacy_path = "pharmacy"
    serializer_class = s.PrescriptionSerializer
    queryset = models.Prescription.objects.select_related("drug", "patient", "prescriber", "pharmacy").order_by("id")
    allowed_roles = {"read": READ_ALL, "write": CLINICAL_WRITE}
    filterset_class = filters.PrescriptionFilter


class FillViewSet(RecordViewSet):
    phi_what = "fill"
    patient_path = "prescription__patient"
    pharmacy_path = "prescription__pharmacy"
    serializer_class = s.FillSerializer
    queryset = models.Fill.objects.order_by("id")
    filterset_fields = ["prescription", "pharmacy", "status", "fill_date"]


class AllergyViewSet(RecordViewSet):
    phi_what = "allergy"
    patient_path = "patient"
    serializer_class = s.AllergySerializer
    queryset = models.Allergy.objects.order_by("id")
    filterset_fields = ["patient", "status", "severity", "drug_class"]


class DiagnosisViewSet(RecordViewSet):
    phi_what = "diagnosis"
    patient_path = "patient"
    serializer_class = s.DiagnosisSerializer
    queryset = models.Diagnosis.objects.order_by("id")
    filterset_fields = ["patient", "code", "status"]


class CoverageViewSet(RecordViewSet):
    phi_what = "coverage"
    patient_path = "patient"
    serializer_class = s.CoverageSerializer
    queryset = models.Coverage.objects.order_by("id")
    filterset_fields = ["patient", "bin", "pcn", "is_active"]


class LabResultViewSet(RecordViewSet):
    phi_what = "lab result"
    patient_path = "patient"
    serializer_class = s.LabResultSerializer
    queryset = models.LabResult.objects.order_by("id")
    filterset_fields = ["patient", "loinc_code", "abnormal_flag"]


class EncounterViewSet(RecordViewSet):
    phi_what = "encounter"
    patient_path = "patient"
    serializer_class = s.EncounterSerializer
    queryset = models.Encounter.objects.order_by("id")
    filterset_fields = ["patient", "kind", "prescriber", "date"]


class ObtainTokenView(APIView):
    """Exchange a username and password for an API token."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_scope = "anon"

    @extend_schema(
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(),
                                                   "password": serializers.CharField()}),
        responses={200: inline_serializer("TokenResponse", {"token": serializers.CharField()})},
    )
    def post(self, request):
        data = request.data if hasattr(request.data, "get") else {}
        errors = {}
        for field in ("username", "password"):
            if not data.get(field):
                errors[field] = [serializers.ErrorDetail("This field is required.", code="required")]
        if errors:
            raise serializers.ValidationError(errors)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"password": [serializers.ErrorDetail("Unable to log in with these credentials.",
                                                      code="invalid_credentials")]}
            )
        token, _ = Token.objects.get_or_create(user=user)
        # A token exchange is a login: last_login, django-axes and the audit chain hear of it.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response({"token": token.key}, status=status.HTTP_200_OK)


class OutboxMessageViewSet(viewsets.ReadOnlyModelViewSet):
    """Outbound messages (NCPDP, FHIR, HL7, patient notices) with their delivery state."""

    serializer_class = s.OutboxMessageSerializer
    queryset = models.OutboxMessage.objects.order_by("-id")
    allowed_roles = {"read": {ADMIN, INTEGRATOR}, "resend": {ADMIN, INTEGRATOR}}
    filterset_fields = ["status", "kind", "transport", "message_id", "related_model", "related_id"]

    def get_queryset(self):
        return selectors.scope_outbox(models.OutboxMessage.objects.order_by("-id"), user=self.request.user)

    @extend_schema(request=None, responses=s.OutboxMessageSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        from pharmacy.messaging.outbox import outbox_resend

        message = outbox_resend(outbox_id=self.get_object().pk, actor=request.user)
        return Response(self.get_serializer(message).data)
