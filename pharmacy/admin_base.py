"""Admin base: history shown read-only, every admin save recorded with its actor and a reason."""
from __future__ import annotations

from simple_history.admin import SimpleHistoryAdmin

from .actors import stamp


class HistoryAdmin(SimpleHistoryAdmin):
    history_list_display: list[str] = []

    def save_model(self, request, obj, form, change):
        changed = ", ".join(form.changed_data) if change else ""
        reason = f"Edited in admin ({changed})" if change else "Created in admin"
        stamp(obj, actor=request.user, reason=reason)
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        # Clinical records are corrected or deactivated, never erased (history must stay whole).
        return request.user.is_superuser and super().has_delete_permission(request, obj)
