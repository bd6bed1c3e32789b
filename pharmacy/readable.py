"""JSON values as lines a person reads (issue 11 item 7): triage summaries, protocol traces,
eligibility findings, a decision's changes and any other JSON field render as labelled lines
("Patient: …", "Rule: … → passed", "Refills: 0 → 5"), never as Python reprs of dicts or lists.

Pure functions over the stored shapes; the core names no workflow app, so labels for a field's
keys are passed in by the caller (or derived from the key: ``days_supply`` → "Days supply")."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

EMPTY = "—"


def label_of(key, labels: Mapping[str, str] | None = None) -> str:
    key = str(key)
    if labels and key in labels:
        return labels[key]
    return key.replace("_", " ").strip().capitalize() or key


def _is_change(value) -> bool:
    return isinstance(value, Mapping) and set(value) <= {"from", "to"} and "to" in value


def scalar_text(value) -> str:
    if value is None or value == "":
        return EMPTY
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def inline_text(value, labels: Mapping[str, str] | None = None) -> str:
    """One value on one line: scalars as text, lists joined with "; ", mappings as "Label: value"."""
    if isinstance(value, Mapping):
        if _is_change(value):
            return f"{scalar_text(value.get('from'))} → {scalar_text(value.get('to'))}"
        if not value:
            return EMPTY
        return "; ".join(f"{label_of(k, labels)}: {inline_text(v, labels)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "; ".join(item_line(v, labels) for v in value) or EMPTY
    return scalar_text(value)


def item_line(item, labels: Mapping[str, str] | None = None) -> str:
    """One element of a stored list: a protocol check, an eligibility finding, or anything else."""
    if not isinstance(item, Mapping):
        return inline_text(item, labels)
    if "name" in item and ("passed" in item or "skipped" in item):  # protocol trace check
        result = "skipped" if item.get("skipped") else ("passed" if item.get("passed") else "failed")
        line = f"Rule: {item['name']} → {result}"
        return f"{line} ({item['detail']})" if item.get("detail") else line
    if "message" in item and ("blocking" in item or "code" in item):  # eligibility finding
        kind = "Blocks" if item.get("blocking") else "Note"
        line = f"{kind}: {item['message']}"
        if item.get("citation"):
            line += f" — {item['citation']}"
        return line
    return inline_text(item, labels)


def readable_lines(value, labels: Mapping[str, str] | None = None) -> list[str]:
    """A JSON value as labelled lines; [] for an empty value (the caller shows a dash)."""
    if value is None or value == "" or value == {} or value == []:
        return []
    if isinstance(value, Mapping):
        return [f"{label_of(k, labels)}: {inline_text(v, labels)}" for k, v in value.items()]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [item_line(v, labels) for v in value]
    return [scalar_text(value)]
