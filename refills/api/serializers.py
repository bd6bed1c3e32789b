from rest_framework import serializers

from pharmacy.models import Prescription
from refills.choices import RequestSource
from refills.models import RefillRequest


class RefillRequestSerializer(serializers.ModelSerializer):
    drug = serializers.CharField(source="prescription.drug.__str__", read_only=True)

    class Meta:
        model = RefillRequest
        fields = ["id", "prescription", "patient", "drug", "kind", "source", "status", "is_urgent", "run_out_date",
                  "pharmacy", "eligibility", "protocol_mode", "protocol_outcome", "protocol_suggestion",
                  "protocol_trace", "claimed_by", "decided_by", "decided_at", "note", "denial_reason_code",
                  "denial_reason", "approved_quantity", "approved_days_supply", "approved_refills",
                  "outbound_message_id", "match_confidence", "triage_summary", "created_at", "updated_at"]
        read_only_fields = fields


class RefillRequestCreateSerializer(serializers.Serializer):
    prescription = serializers.PrimaryKeyRelatedField(queryset=Prescription.objects.all())
    kind = serializers.ChoiceField(choices=["refill", "renewal"], required=False)
    source = serializers.ChoiceField(choices=[RequestSource.API, RequestSource.STAFF], default=RequestSource.API)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = serializers.DecimalField(max_digits=10, decimal_places=3, required=False, min_value=0)
    days_supply = serializers.IntegerField(required=False, min_value=1)
    refills = serializers.IntegerField(required=False, min_value=0)


class DenySerializer(serializers.Serializer):
    reason = serializers.CharField()
    reason_code = serializers.CharField(required=False, default="AF", max_length=2)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
