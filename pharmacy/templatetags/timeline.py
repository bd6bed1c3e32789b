"""``{% history_timeline obj %}``: who changed what and when, with field-level differences,
readable by a pharmacist (django-simple-history records)."""
from __future__ import annotations

from django import template

from pharmacy.readable import readable_lines

register = template.Library()

HIDDEN_FIELDS = {"updated_at", "created_at", "id"}


def timeline_entries(obj, *, limit: int = 50) -> list[dict]:
    records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    entries, related = [], []
    for index, record in enumerate(records[:limit]):
        previous = records[index + 1] if index + 1 < len(records) else None
        changes = []
        if previous is not None:
            delta = record.diff_against(previous)
            for change in delta.changes:
                if change.field in HIDDEN_FIELDS:
                    continue
                field = obj._meta.get_field(change.field)
                item = {"field": str(field.verbose_name), "old": _display(field, change.old),
                        "new": _display(field, change.new)}
                if field.get_internal_type() == "JSONField":
                    # JSON as labelled lines, never a Python repr (issue 11 item 7).
                    item.update(multiline=True, old_lines=readable_lines(change.old),
                                new_lines=readable_lines(change.new))
                if field.is_relation and field.many_to_one:
                    related.append((field, item, change.old, change.new))
                changes.append(item)
        user = record.history_user
        entries.append({
            "when": record.history_date,
            "who": (user.get_full_name() or user.username) if user else "unknown",
            "is_system": bool(user and user.username.startswith("system:")),
            "action": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
            "reason": record.history_change_reason or "",
            "changes": changes,
        })
    _name_related(related)
    return entries


def _name_related(related: list) -> None:
    """Show a changed foreign key by name (``decided by: — → Paula Reyes``), not by id: one query
    per related model, whatever the number of entries."""
    wanted: dict = {}
    for field, _item, old, new in related:
        wanted.setdefault(field.related_model, set()).update(v for v in (old, new) if v not in (None, ""))
    names = {}
    for model, pks in wanted.items():
        for pk, target in model._default_manager.in_bulk(list(pks)).items():
            full_name = getattr(target, "get_full_name", None)
            names[(model, pk)] = (full_name() if full_name else "") or str(target)
    for field, item, old, new in related:
        for key, value in (("old", old), ("new", new)):
            if value not in (None, ""):
                item[key] = names.get((field.related_model, value), f"#{value} (removed)")


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


@register.filter(name="readable_lines")
def readable_lines_filter(value):
    """``{% for line in obj.json_field|readable_lines %}``: a JSON value as labelled lines."""
    return readable_lines(value)


@register.filter(name="readable_item")
def readable_item_filter(item):
    """One protocol check or eligibility finding as one labelled line."""
    from pharmacy.readable import item_line

    return item_line(item)
