"""Admin: payers and their criteria are edited here (with history); cases and responses are
read-only records (state changes go through services)."""

from django.contrib import admin

from pharmacy.admin_base import HistoryAdmin

from . import models


class CriteriaInline(admin.StackedInline):
    model = models.PayerCriteria
    extra = 0


@admin.register(models.Payer)
class PayerAdmin(HistoryAdmin):
    list_display = ["name", "bin", "pcn", "endpoint_key", "expedited_hours", "standard_hours", "is_active"]
    search_fields = ["name", "bin", "pcn"]
    inlines = [CriteriaInline]
    filter_horizontal = ["integrator_users"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "integrator_users":  # only integrator accounts speak for a payer
            from django.contrib.auth import get_user_model

            from pharmacy.roles import INTEGRATOR

            kwargs["queryset"] = (get_user_model().objects.filter(groups__name=INTEGRATOR, is_active=True)
                                  .distinct().order_by("username"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(models.PayerCriteria)
class PayerCriteriaAdmin(HistoryAdmin):
    list_display = ["payer", "drug_name", "therapeutic_class", "benefit", "rollout_mode", "is_active"]
    list_filter = ["rollout_mode", "benefit", "payer"]
    search_fields = ["drug_name", "therapeutic_class", "payer__name"]


class ReadOnlyAdmin(HistoryAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.PACase)
class PACaseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "patient",
        "drug",
        "payer",
        "status",
        "rollout_mode",
        "submitted_automatically",
        "decision_due_at",
        "created_at",
    ]
    list_filter = ["status", "rollout_mode", "benefit", "submitted_automatically"]
    search_fields = ["patient__last_name", "claim_reference", "payer_case_id", "authorization_number"]


@admin.register(models.ClaimRejection)
class ClaimRejectionAdmin(ReadOnlyAdmin):
    list_display = [
        "claim_reference",
        "patient",
        "ndc",
        "bin",
        "reject_codes",
        "deliveries",
        "case",
        "received_at",
    ]
    search_fields = ["claim_reference"]


@admin.register(models.PASubmission)
class PASubmissionAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "adapter", "message_id", "created_at"]


@admin.register(models.PAResponse)
class PAResponseAdmin(ReadOnlyAdmin):
    list_display = ["id", "case", "source", "decision", "is_malformed", "applied", "received_at"]
    list_filter = ["is_malformed", "source", "decision"]


@admin.register(models.PAAttachment)
class PAAttachmentAdmin(ReadOnlyAdmin):
    list_display = ["case", "file_name", "mime_type", "size", "created_at"]
    exclude = ["data"]


@admin.register(models.PrescriptionAuthorization)
class PrescriptionAuthorizationAdmin(ReadOnlyAdmin):
    list_display = ["prescription", "status", "authorization_number", "expiration_date", "updated_at"]
