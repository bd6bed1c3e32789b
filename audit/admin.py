"""Read-only admin for the audit chain and the PHI access log: no add, change or delete."""

from django.contrib import admin
from django.contrib.auth import get_user_model

from .models import AuditEvent, PhiAccess


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "sequence",
        "occurred_at",
        "kind",
        "actor_label",
        "subject_type",
        "subject_id",
        "patient_id",
        "ip_address",
        "summary",
    ]
    list_filter = ["kind", "occurred_at"]
    search_fields = ["actor_label", "subject_id", "summary", "kind"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(PhiAccess)
class PhiAccessAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "patient_id", "what", "method", "path", "ip_address"]
    list_filter = ["at", "method", "username"]
    search_fields = ["username", "=patient_id", "what", "path"]
    date_hierarchy = "at"
    show_full_result_count = False


# People who acted stay attributable: history rows point at them (a delete would have to rewrite
# history_user, which the append-only rules refuse). Deactivate a user instead of deleting.
User = get_user_model()
if admin.site.is_registered(User):
    base_user_admin = type(admin.site._registry[User])
    admin.site.unregister(User)

    @admin.register(User)
    class UserAdmin(base_user_admin):
        """An admin (role) manages accounts and their roles (groups); only a superuser grants
        superuser status or per-user permissions, so the role cannot raise itself above the roles."""

        def has_delete_permission(self, request, obj=None):
            return False

        def get_fieldsets(self, request, obj=None):
            fieldsets = super().get_fieldsets(request, obj)
            if request.user.is_superuser:
                return fieldsets
            hidden = {"is_superuser", "user_permissions"}
            return [(title, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
                    for title, opts in fieldsets]
