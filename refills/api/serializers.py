import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pharmacy.api.serializers import PartnerScopedMixin
from pharmacy.models import Prescription
from refills.choices import IntakeChannel, RequestSource
from refills.models import IntakeMessage, RefillRequest
from refills.selectors import refill_request_dur


class RefillRequestSerializer(serializers.ModelSerializer):
    drug = serializers.CharField(source="prescription.drug.__str__", read_only=True)

    class Meta:
        model = RefillRequest
        fields = ["id", "prescription", "patient", "drug", "kind", "source", "status", "is_urgent", "run_out_date",
                  "pharmacy", "eligibility", "protocol_mode", "protocol_outcome", "protocol_suggestion",
                  "protocol_trace", "claimed_by", "decided_by", "decided_at", "note", "denial_reason_code",
                  "denial_reason", "approved_quantity", "approved_days_supply", "approved_refills",
                  "changes", "agreement", "override_reason", "overridden_findings", "new_prescription",
                  "new_prescription_requested_at",
                  "outbound_message_id", "match_confidence", "triage_summary", "created_at", "updated_at"]
        read_only_fields = fields


class RefillRequestDetailSerializer(RefillRequestSerializer):
    """One request (GET /api/v1/refill-requests/{id}/): every list field plus the drug utilization
    review a person sees before approving (refills.selectors.refill_request_dur)."""

    interactions = serializers.SerializerMethodField()
    therapeutic_duplications = serializers.SerializerMethodField()
    quantity_warnings = serializers.SerializerMethodField()

    class Meta(RefillRequestSerializer.Meta):
        fields = [*RefillRequestSerializer.Meta.fields, "interactions", "therapeutic_duplications",
                  "quantity_warnings"]
        read_only_fields = fields

    def _dur(self, obj) -> dict:
        cache = self.context.setdefault("_dur", {})
        if obj.pk not in cache:
            cache[obj.pk] = refill_request_dur(obj)
        return cache[obj.pk]

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "code": {"type": "string"}, "pair": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "drug": {"type": "string"}, "other": {"type": "string"}, "severity": {"type": "string"},
        "message": {"type": "string"}, "citation": {"type": "string"}}}})
    def get_interactions(self, obj) -> list:
        return [i.as_json() for i in self._dur(obj)["interactions"]]

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "prescription": {"type": "integer"}, "drug": {"type": "string"}, "therapeutic_class": {"type": "string"}}}})
    def get_therapeutic_duplications(self, obj) -> list:
        return [{"prescription": o.pk, "drug": str(o.drug), "therapeutic_class": o.drug.therapeutic_class}
                for o in self._dur(obj)["therapeutic_duplications"]]

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_quantity_warnings(self, obj) -> list[str]:
        return list(self._dur(obj)["quantity_warnings"])


class RefillRequestCreateSerializer(PartnerScopedMixin, serializers.Serializer):
    prescription = serializers.PrimaryKeyRelatedField(queryset=Prescription.objects.all())
    kind = serializers.ChoiceField(choices=["refill", "renewal"], required=False)
    source = serializers.ChoiceField(choices=[RequestSource.API, RequestSource.STAFF], default=RequestSource.API)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = serializers.DecimalField(max_digits=10, decimal_places=3, required=False, min_value=0)
    days_supply = serializers.IntegerField(required=False, min_value=1)
    refills = serializers.IntegerField(required=False, min_value=0)
    override_reason = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="A pharmacist's reason to override an allergy conflict or a refill too soon (e.g. vacation supply).")


class DenySerializer(serializers.Serializer):
    reason = serializers.CharField()
    reason_code = serializers.CharField(required=False, default="AF", max_length=2)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class IntakeInputSerializer(serializers.Serializer):
    """A patient's or pet owner's free-text request as received."""

    channel = serializers.ChoiceField(choices=IntakeChannel.choices)
    sender = serializers.CharField(max_length=200, help_text="The sender's phone number or e-mail address.")
    text = serializers.CharField(max_length=5000, trim_whitespace=True)
    received_at = serializers.DateTimeField(required=False, help_text="When it arrived (default: now).")

    def validate(self, attrs):
        sender = attrs["sender"].strip()
        if attrs["channel"] == IntakeChannel.EMAIL or "@" in sender:
            try:
                validate_email(sender)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"sender": "Not an e-mail address."}) from exc
        elif len(re.sub(r"\D", "", sender)) < 7:
            raise serializers.ValidationError({"sender": "Not a phone number (or e-mail address)."})
        attrs["sender"] = sender
        return attrs


class IntakeMessageSerializer(serializers.ModelSerializer):
    requests = RefillRequestSerializer(many=True, read_only=True)

    class Meta:
        model = IntakeMessage
        fields = ["id", "channel", "sender", "received_at", "status", "matched_patient", "match_confidence",
                  "triage_reason", "match_detail", "requests"]
        read_only_fields = fields
