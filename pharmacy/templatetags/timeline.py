"""``{% history_timeline obj %}``: who changed what and when, with field-level differences,
readable by a pharmacist (django-simple-history records)."""
from __future__ import annotations

from django import template

register = template.Library()

HIDDEN_FIELDS = {"updated_at", "created_at", "id"}


def timeline_entries(obj, *, limit: int = 50) -> list[dict]:
    records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    entries = []
    for index, record in enumerate(records[:limit]):
        previous = records[index + 1] if index + 1 < len(records) else None
        changes = []
        if previous is not None:
            delta = record.diff_against(previous)
            for change in delta.changes:
                if change.field in HIDDEN_FIELDS:
                    continue
                field = obj._meta.get_field(change.field)
                changes.append({"field": str(field.verbose_name), "old": _display(field, change.old),
                                "new": _display(field, change.new)})
        user = record.history_user
        entries.append({
            "when": record.history_date,
            "who": (user.get_full_name() or user.username) if user else "unknown",
            "is_system": bool(user and user.username.startswith("system:")),
            "action": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
            "reason": record.history_change_reason or "",
            "changes": changes,
        })
    return entries


def _display(field, value):
    if value in (None, ""):
        return "—"
    choices = getattr(field, "flatchoices", None)
    if choices:
        return dict(choices).get(value, value)
    return value


@register.inclusion_tag("timeline.html")
def history_timeline(obj, limit: int = 50):
    return {"entries": timeline_entries(obj, limit=limit), "object": obj}
