from django.contrib import admin, messages

from pharmacy.admin_base import HistoryAdmin
from pharmacy.errors import DomainError

from . import models, services


@admin.register(models.InboundMessage)
class InboundMessageAdmin(HistoryAdmin):
    list_display = ["id", "received_at", "channel", "format", "message_type", "sender", "control_id",
                    "control_id_reused", "status", "attempts", "short_error"]
    list_filter = ["status", "control_id_reused", "channel", "format", "message_type"]
    search_fields = ["control_id", "sender", "error", "payload_sha256"]
    readonly_fields = ["channel", "format", "sender", "control_id", "control_id_reused", "payload_sha256",
                       "message_type", "payload", "size_bytes", "payload_truncated", "content_type", "received_at",
                       "status", "error", "attempts", "next_attempt_at", "processed_at", "duplicate_of", "patient",
                       "summary", "source_name"]
    actions = ["retry"]

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:80]

    @admin.action(description="Retry processing of the selected failed or rejected messages")
    def retry(self, request, queryset):
        done = 0
        for message in queryset:
            try:
                services.inbound_retry(message_id=message.pk, actor=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"Message {message.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} message(s) retried.")


@admin.register(models.EhrLink)
class EhrLinkAdmin(HistoryAdmin):
    list_display = ["patient", "ehr_system", "external_id", "consent_to_exchange", "linked_by", "linked_at"]
    list_filter = ["ehr_system", "consent_to_exchange"]
    search_fields = ["external_id", "patient__last_name", "patient__mrn"]
    raw_id_fields = ["patient"]


@admin.register(models.PatientMatchItem)
class PatientMatchItemAdmin(HistoryAdmin):
    list_display = ["id", "inbound_message", "outcome", "status", "resolved_patient", "created_at"]
    list_filter = ["status", "outcome"]
    raw_id_fields = ["inbound_message", "resolved_patient"]


class DiscrepancyInline(admin.TabularInline):
    model = models.Discrepancy
    extra = 0
    fields = ["kind", "priority", "status", "summary", "action", "decided_by", "decided_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.ReconciliationTask)
class ReconciliationTaskAdmin(HistoryAdmin):
    list_display = ["id", "patient", "kind", "status", "priority", "created_at", "completed_at"]
    list_filter = ["status", "kind", "priority"]
    raw_id_fields = ["patient", "inbound_message"]
    inlines = [DiscrepancyInline]


@admin.register(models.Discrepancy)
class DiscrepancyAdmin(HistoryAdmin):
    list_display = ["id", "task", "kind", "priority", "status", "summary"]
    list_filter = ["kind", "priority", "status"]
    raw_id_fields = ["task", "prescription", "created_prescription", "created_allergy"]
