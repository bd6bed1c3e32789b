"""Admin: protocol rules are edited here (every save is in history with the admin's name);
requests, links and intake messages are shown read-only — decisions go through the queue."""
from __future__ import annotations

from django.contrib import admin

from pharmacy.admin_base import HistoryAdmin

from . import models


@admin.register(models.ProtocolRule)
class ProtocolRuleAdmin(HistoryAdmin):
    list_display = ["name", "mode", "priority", "species", "require_maintenance", "allow_controlled",
                    "allow_high_alert", "max_months_since_visit", "is_active"]
    list_editable = ["mode", "is_active"]
    list_filter = ["mode", "species", "is_active"]
    search_fields = ["name", "notes", "source"]
    fieldsets = [
        (None, {"fields": ["name", "mode", "priority", "is_active", "species"]}),
        ("Which drugs", {"fields": ["therapeutic_classes", "drug_names", "require_maintenance", "allow_controlled",
                                    "allow_high_alert"]}),
        ("Checks", {"fields": ["max_months_since_visit", "required_labs", "check_allergy_conflict",
                               "check_too_soon", "min_therapy_months", "bridge_days"]}),
        ("Why", {"fields": ["source", "notes"]}),
    ]


class ReadOnlyWorkflowAdmin(HistoryAdmin):
    """Workflow rows change only through services (transition checks, outbox, audit chain)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # view-only pages (view permission) with the history button

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.RefillRequest)
class RefillRequestAdmin(ReadOnlyWorkflowAdmin):
    list_display = ["id", "kind", "status", "is_urgent", "run_out_date", "patient", "prescription", "source",
                    "protocol_mode", "protocol_outcome", "decided_by", "decided_at", "created_at"]
    list_filter = ["status", "kind", "source", "is_urgent", "protocol_mode", "protocol_outcome"]
    search_fields = ["id", "patient__last_name", "patient__mrn", "prescription__drug__name", "pharmacy_message_id",
                     "outbound_message_id"]
    list_select_related = ["patient", "prescription__drug", "decided_by"]
    date_hierarchy = "created_at"
    raw_id_fields = ["prescription", "patient", "pharmacy", "prescriber", "intake", "claimed_by", "decided_by"]


@admin.register(models.PrescriberLink)
class PrescriberLinkAdmin(ReadOnlyWorkflowAdmin):
    list_display = ["id", "request", "prescriber", "status", "expires_at", "reminded_at", "used_at", "created_at"]
    list_filter = ["status"]
    exclude = ["token_hash"]  # a hash, but still nothing a person needs to see
    raw_id_fields = ["request", "prescriber"]


@admin.register(models.IntakeMessage)
class IntakeMessageAdmin(ReadOnlyWorkflowAdmin):
    list_display = ["id", "channel", "status", "received_at", "matched_patient", "match_confidence", "triage_reason"]
    list_filter = ["channel", "status"]
    search_fields = ["sender", "text"]
    raw_id_fields = ["matched_patient", "handled_by"]


@admin.register(models.InboundNcpdpMessage)
class InboundNcpdpMessageAdmin(ReadOnlyWorkflowAdmin):
    list_display = ["id", "received_at", "transaction", "sender", "message_id", "control_id_reused", "status",
                    "error_code", "attempts", "refill_request", "result"]
    list_filter = ["status", "control_id_reused", "transaction", "error_code"]
    search_fields = ["message_id", "relates_to_message_id", "sender", "payload_sha256"]
    date_hierarchy = "received_at"
    raw_id_fields = ["received_by", "duplicate_of", "refill_request", "answers_outbox"]


@admin.register(models.NewRxPatientMatch)
class NewRxPatientMatchAdmin(ReadOnlyWorkflowAdmin):
    """NewRx messages waiting for a person to choose the patient (resolved through
    refills.new_rx.new_rx_match_resolve)."""

    list_display = ["id", "created_at", "status", "inbound_message", "resolved_patient", "prescription", "resolved_at"]
    list_filter = ["status"]
    raw_id_fields = ["inbound_message", "resolved_patient", "prescription", "resolved_by"]
