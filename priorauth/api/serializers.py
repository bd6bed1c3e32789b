from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from pharmacy.api.serializers import PartnerScopedMixin
from pharmacy.models import Drug, Patient, Prescription
from pharmacy.validators import normalize_ndc, validate_bin
from priorauth import selectors
from priorauth.models import PACase, PAResponse, PASubmission


class ClaimRejectionInSerializer(PartnerScopedMixin, serializers.Serializer):
    prescription = serializers.PrimaryKeyRelatedField(
        queryset=Prescription.objects.all(), required=False, allow_null=True
    )
    patient = serializers.PrimaryKeyRelatedField(
        queryset=Patient.objects.all(), required=False, allow_null=True
    )
    ndc = serializers.CharField(max_length=13, help_text="NDC as billed (normalised to 11 digits).")
    bin = serializers.CharField(max_length=6)
    pcn = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    group = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    reject_codes = serializers.ListField(
        child=serializers.CharField(max_length=3),
        min_length=1,
        max_length=20,
        help_text='NCPDP reject codes (field 511-FB), e.g. ["75"].',
    )
    claim_reference = serializers.CharField(max_length=64)
    rejected_at = serializers.DateTimeField()

    def validate_ndc(self, value):
        try:
            return normalize_ndc(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from exc

    def validate_bin(self, value):
        try:
            validate_bin(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from exc
        return value

    def validate(self, attrs):
        rx, patient = attrs.get("prescription"), attrs.get("patient")
        if rx is None and patient is None:
            raise serializers.ValidationError(
                {"prescription": "Give the prescription, or the patient and NDC."}
            )
        if rx is not None and patient is not None and rx.patient_id != patient.pk:
            raise serializers.ValidationError({"patient": "The prescription belongs to another patient."})
        attrs["drug"] = rx.drug if rx is not None else Drug.objects.filter(ndc=attrs["ndc"]).first()
        if rx is None:
            attrs["prescription"] = (
                Prescription.objects.filter(patient=patient, drug__ndc=attrs["ndc"])
                .exclude(status__in=["discontinued", "completed"])
                .order_by("-written_date", "-id")
                .first()
            )
        attrs["patient"] = attrs["prescription"].patient if attrs["prescription"] is not None else patient
        return attrs


class ClaimRejectionOutSerializer(serializers.Serializer):
    claim_rejection = serializers.IntegerField()
    case = serializers.IntegerField(allow_null=True)
    created = serializers.BooleanField()
    deliveries = serializers.IntegerField()
    reasons = serializers.ListField(child=serializers.DictField())


class SubmissionSerializer(serializers.ModelSerializer):
    outbox_status = serializers.CharField(source="outbox.status", default="", read_only=True)

    class Meta:
        model = PASubmission
        fields = ["id", "kind", "adapter", "message_id", "outbox_status", "created_at"]


class ResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = PAResponse
        fields = [
            "id",
            "source",
            "decision",
            "authorization_number",
            "effective_date",
            "expiration_date",
            "reasons",
            "questions",
            "is_malformed",
            "errors",
            "applied",
            "received_at",
        ]


class PACaseSerializer(serializers.ModelSerializer):
    drug = serializers.CharField(source="drug.__str__", read_only=True)
    payer = serializers.CharField(source="payer.name", default=None, read_only=True)
    age_hours = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = PACase
        fields = [
            "id",
            "prescription",
            "patient",
            "drug",
            "payer",
            "status",
            "trigger",
            "claim_reference",
            "benefit",
            "adapter",
            "rollout_mode",
            "is_expedited",
            "submitted_at",
            "submitted_automatically",
            "decision_due_at",
            "age_hours",
            "overdue",
            "authorization_number",
            "effective_date",
            "expiration_date",
            "attention",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_age_hours(self, obj) -> float:
        return round(selectors.clock(obj).age.total_seconds() / 3600, 1)

    def get_overdue(self, obj) -> bool:
        return selectors.clock(obj).overdue


class DraftSerializer(serializers.Serializer):
    letter = serializers.CharField()
    fields = serializers.DictField()
    statements = serializers.ListField(child=serializers.DictField())
    drafter = serializers.CharField()


class PACaseDetailSerializer(PACaseSerializer):
    draft = serializers.SerializerMethodField()
    submissions = SubmissionSerializer(many=True, read_only=True)
    responses = ResponseSerializer(many=True, read_only=True)

    class Meta(PACaseSerializer.Meta):
        fields = [
            *PACaseSerializer.Meta.fields,
            "evidence",
            "criteria_result",
            "missing",
            "letter",
            "fields",
            "draft",
            "agreement",
            "auto_trace",
            "auto_review",
            "payer_case_id",
            "questions",
            "answers",
            "denial_reasons",
            "appeal_letter",
            "submissions",
            "responses",
            "renewal_of",
        ]
        read_only_fields = fields

    def get_draft(self, obj) -> DraftSerializer(allow_null=True):
        """The system's draft — hidden in shadow mode (and none in off mode)."""
        if not obj.draft_visible or not obj.system_letter:
            return None
        return {
            "letter": obj.system_letter,
            "fields": obj.system_fields,
            "statements": obj.system_statements,
            "drafter": obj.drafter,
        }


class PACaseOpenSerializer(serializers.Serializer):
    prescription = serializers.PrimaryKeyRelatedField(queryset=Prescription.objects.all())


class SubmitSerializer(serializers.Serializer):
    letter = serializers.CharField(required=False, allow_blank=False, max_length=50_000)
    fields = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=2000), required=False
    )


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class AppealSerializer(serializers.Serializer):
    letter = serializers.CharField(required=False, max_length=50_000)


class PAResponseInSerializer(serializers.Serializer):
    """Documented shape of a pushed response (the view validates the raw body itself so that a
    malformed one is still stored)."""

    case = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=["approved", "denied", "pended", "closed"])
    authorization_number = serializers.CharField(required=False)
    effective_date = serializers.DateField(required=False)
    expiration_date = serializers.DateField(required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)
    questions = serializers.ListField(child=serializers.JSONField(), required=False)
    payer_case_id = serializers.CharField(required=False)


class PAResponseOutSerializer(serializers.Serializer):
    response = serializers.IntegerField()
    case = serializers.IntegerField()
    status = serializers.CharField()
    applied = serializers.BooleanField()
