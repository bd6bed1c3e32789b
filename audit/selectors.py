"""Reads of the audit app: log pages, timelines, the patient page's history panel."""

from __future__ import annotations

from django.apps import apps
from django.db.models import QuerySet

from pharmacy.templatetags.timeline import timeline_entries

from .history import history_model
from .models import AuditEvent, PhiAccess


def phi_access_list() -> QuerySet[PhiAccess]:
    return PhiAccess.objects.order_by("-at", "-id")


def audit_event_list() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.order_by("-sequence")


def timeline_object(*, app_label: str, model_name: str, pk: int):
    """The live object (or its last history record if it was deleted) whose timeline is asked for;
    only models that keep history. Raises LookupError / DoesNotExist."""
    model = apps.get_model(app_label, model_name)
    if history_model(model) is None:
        raise LookupError(f"{model._meta.label} keeps no history")
    return model.objects.get(pk=pk)


def object_patient_id(obj) -> int | None:
    from pharmacy.models import Patient

    if isinstance(obj, Patient):
        return obj.pk
    for attr in ("patient_id", "matched_patient_id"):
        if getattr(obj, attr, None):
            return getattr(obj, attr)
    for attr in ("prescription", "request", "task", "case"):
        related = getattr(obj, attr, None)
        if related is not None and getattr(related, "patient_id", None):
            return related.patient_id
    return None


def patient_panels(*, patient, user) -> list[dict]:
    """The patient page's history panel: the patient record's timeline (fixed query count) and
    links to each prescription's timeline."""
    return [
        {
            "title": "History",
            "template": "audit/_patient_history_panel.html",
            "context": {"patient": patient, "entries": timeline_entries(patient, limit=20)},
        }
    ]
