from django.contrib import admin
from django.contrib.auth import get_user_model

from . import models
from .actors import save_with_history
from .admin_base import HistoryAdmin
from .roles import INTEGRATOR
from .services import fill_record, prescription_create

admin.site.site_header = "Rx Workflow Hub administration"
admin.site.site_title = "Rx Workflow Hub"


@admin.register(models.Facility)
class FacilityAdmin(HistoryAdmin):
    list_display = ["code", "name", "kind", "phone"]
    search_fields = ["code", "name"]


@admin.register(models.Pharmacy)
class PharmacyAdmin(HistoryAdmin):
    list_display = ["name", "ncpdp_id", "npi", "phone", "outbound_transport", "is_active"]
    search_fields = ["name", "ncpdp_id", "npi"]
    list_filter = ["outbound_transport", "is_active"]
    filter_horizontal = ["integrator_users"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "integrator_users":
            # Only integrator accounts post NCPDP messages (admins may post for any pharmacy).
            kwargs["queryset"] = (get_user_model().objects.filter(groups__name=INTEGRATOR, is_active=True)
                                  .distinct().order_by("username"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(models.Prescriber)
class PrescriberAdmin(HistoryAdmin):
    list_display = ["last_name", "first_name", "credentials", "npi", "dea_number", "is_veterinarian", "practice"]
    search_fields = ["last_name", "first_name", "npi", "dea_number", "state_license_number"]
    list_filter = ["is_veterinarian", "practice"]


class AllergyInline(admin.TabularInline):
    model = models.Allergy
    extra = 0


class CoverageInline(admin.TabularInline):
    model = models.Coverage
    extra = 0


@admin.register(models.Patient)
class PatientAdmin(HistoryAdmin):
    list_display = [
        "last_name",
        "first_name",
        "mrn",
        "facility",
        "birth_date",
        "species",
        "phone",
        "consent_to_messages",
    ]
    search_fields = ["last_name", "first_name", "mrn", "phone", "email", "owner_last_name"]
    list_filter = ["facility", "species", "contact_preference", "consent_to_messages"]
    autocomplete_fields = ["preferred_pharmacy", "primary_prescriber"]
    inlines = [AllergyInline, CoverageInline]


@admin.register(models.Drug)
class DrugAdmin(HistoryAdmin):
    list_display = ["name", "strength", "dose_form", "ndc", "rxcui", "dea_schedule", "therapeutic_class",
                    "is_maintenance", "is_high_alert", "is_urgent", "species"]
    search_fields = ["name", "ndc", "rxcui"]
    list_filter = ["dea_schedule", "therapeutic_class", "is_maintenance", "is_high_alert", "is_urgent", "species"]


class FillInline(admin.TabularInline):
    model = models.Fill
    extra = 0
    fields = ["fill_date", "quantity", "days_supply", "pharmacy", "status"]


@admin.register(models.Prescription)
class PrescriptionAdmin(HistoryAdmin):
    list_display = ["id", "patient", "drug", "prescriber", "status", "refills_remaining", "refills_authorized",
                    "written_date", "expiration_date"]
    list_filter = ["status", "dea_schedule"]
    search_fields = ["rx_number", "patient__last_name", "patient__mrn", "drug__name"]
    autocomplete_fields = ["patient", "prescriber", "drug", "pharmacy"]
    list_select_related = ["patient", "drug", "prescriber"]
    readonly_fields = ["dea_schedule"]
    inlines = [FillInline]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new prescription goes through the core service (history + allergy flags, same actor).
        prescription_create(prescription=obj, actor=request.user, reason="Created in admin")
        return None

    def save_formset(self, request, form, formset, change):
        if formset.model is not models.Fill:
            return super().save_formset(request, form, formset, change)
        # A fill added in the inline is recorded through the core service (history + the apps' fill
        # hooks, same actor); changed fills are saved with history as any admin edit.
        for obj in formset.save(commit=False):
            if obj.pk is None:
                fill_record(fill=obj, actor=request.user, reason="Created in admin (prescription page)")
            else:
                changed = ", ".join(next((f.changed_data for f in formset.forms if f.instance is obj), []))
                save_with_history(obj, actor=request.user, reason=f"Edited in admin ({changed})")
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()
        return None


@admin.register(models.Fill)
class FillAdmin(HistoryAdmin):
    list_display = ["prescription", "fill_date", "quantity", "days_supply", "pharmacy", "status"]
    list_filter = ["status"]
    autocomplete_fields = ["prescription", "pharmacy"]
    list_select_related = ["prescription__drug", "pharmacy"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new fill goes through the core service (history + the apps' fill hooks, same actor).
        fill_record(fill=obj, actor=request.user, reason="Created in admin")
        return None


@admin.register(models.Allergy)
class AllergyAdmin(HistoryAdmin):
    list_display = ["patient", "substance", "drug_class", "severity", "status", "source"]
    list_filter = ["status", "severity", "source"]
    search_fields = ["substance", "patient__last_name"]
    autocomplete_fields = ["patient"]


@admin.register(models.AllergyFlag)
class AllergyFlagAdmin(HistoryAdmin):
    list_display = ["prescription", "allergy", "reason", "created_at", "cleared_at"]
    raw_id_fields = ["prescription", "allergy"]


@admin.register(models.Diagnosis)
class DiagnosisAdmin(HistoryAdmin):
    list_display = ["patient", "code", "description", "status"]
    search_fields = ["code", "description", "patient__last_name"]
    autocomplete_fields = ["patient"]


@admin.register(models.Coverage)
class CoverageAdmin(HistoryAdmin):
    list_display = ["patient", "payer_name", "bin", "pcn", "group", "priority", "is_active"]
    search_fields = ["payer_name", "bin", "member_id", "patient__last_name"]
    autocomplete_fields = ["patient"]


@admin.register(models.LabResult)
class LabResultAdmin(HistoryAdmin):
    list_display = ["patient", "loinc_code", "name", "value", "unit", "abnormal_flag", "collected_at"]
    list_filter = ["abnormal_flag"]
    search_fields = ["loinc_code", "name", "patient__last_name"]
    autocomplete_fields = ["patient"]


@admin.register(models.Encounter)
class EncounterAdmin(HistoryAdmin):
    list_display = ["patient", "date", "kind", "prescriber"]
    list_filter = ["kind"]
    autocomplete_fields = ["patient", "prescriber"]


@admin.register(models.OutboxMessage)
class OutboxMessageAdmin(HistoryAdmin):
    list_display = ["message_id", "kind", "transport", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "transport", "kind"]
    search_fields = ["message_id", "dedupe_key", "related_id"]
    readonly_fields = [f.name for f in models.OutboxMessage._meta.fields]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry selected messages (failed or dead)")
    def resend(self, request, queryset):
        from pharmacy.messaging.outbox import outbox_resend

        for message in queryset:
            outbox_resend(outbox_id=message.pk, actor=request.user)
        self.message_user(request, f"{queryset.count()} message(s) queued again.")


@admin.register(models.CollaborativePracticeAgreement)
class CollaborativePracticeAgreementAdmin(HistoryAdmin):
    """Agreements under which named pharmacists may authorize renewals (never Schedule II–V)."""

    list_display = ["title", "prescriber", "effective_date", "end_date", "max_days_supply", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["title", "prescriber__last_name", "document_reference"]
    filter_horizontal = ["pharmacists", "pharmacist_groups"]
    autocomplete_fields = ["prescriber"]


@admin.register(models.RefusedPayload)
class RefusedPayloadAdmin(HistoryAdmin):
    """API bodies refused before any view read them (kept with the error; never edited)."""

    list_display = ["id", "received_at", "method", "path", "received_by", "size_bytes", "error_code", "error"]
    list_filter = ["error_code", "path"]
    search_fields = ["path", "error", "payload_sha256"]
    date_hierarchy = "received_at"
    raw_id_fields = ["received_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
