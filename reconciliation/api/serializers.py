from rest_framework import serializers

from reconciliation.models import Discrepancy, InboundMessage, ReconciliationTask


class InboundMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundMessage
        fields = ["id", "channel", "format", "sender", "control_id", "message_type", "received_at", "status", "error",
                  "attempts", "processed_at", "duplicate_of", "patient", "summary", "source_name", "control_id_reused",
                  "payload_sha256", "size_bytes", "payload_truncated", "next_attempt_at"]
        read_only_fields = fields


class InboundMessageDetailSerializer(InboundMessageSerializer):
    class Meta(InboundMessageSerializer.Meta):
        fields = [*InboundMessageSerializer.Meta.fields, "payload", "content_type"]
        read_only_fields = fields


class DiscrepancySerializer(serializers.ModelSerializer):
    class Meta:
        model = Discrepancy
        fields = ["id", "task", "kind", "priority", "status", "action", "summary", "suggested_action", "ehr_data",
                  "pharmacy_data", "prescription", "decided_by", "decided_at", "note", "applied",
                  "created_prescription", "created_allergy"]
        read_only_fields = fields


class ReconciliationTaskSerializer(serializers.ModelSerializer):
    discrepancies = DiscrepancySerializer(many=True, read_only=True)

    class Meta:
        model = ReconciliationTask
        fields = ["id", "patient", "inbound_message", "kind", "status", "priority", "source_format", "ehr_system",
                  "ehr_medications", "ehr_allergies", "no_known_allergies", "pharmacy_medications",
                  "pharmacy_allergies", "created_at", "completed_at", "completed_by", "discrepancies"]
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class IngestAnswerSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Inbound message ID.")
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    tasks = serializers.ListField(child=serializers.IntegerField())
