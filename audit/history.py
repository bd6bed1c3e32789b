"""Which models keep history, and how each history table relates to a patient (for per-patient
exports and the patient page's history panel)."""

from __future__ import annotations

from django.apps import apps
from django.db.models import Q

from pharmacy import registry


def project_apps() -> list[str]:
    """The project's apps: the core and every app that registered its contribution (pharmacy/registry.py)."""
    return [c.app_label for c in registry.contributions()]


# Models of project apps without HistoricalRecords, each with the reason (the complete-history
# test fails for any other model that lacks it).
EXCLUDED_FROM_HISTORY = {
    "audit.auditevent": "the hash-chained audit log itself: append-only, never changed",
    "audit.auditchainhead": "a lock row holding the chain's last hash; the chain is its history",
    "audit.phiaccess": "the PHI access log: append-only, one row per view, never changed",
}


def project_models():
    """Concrete, non-historical models of the project apps."""
    from simple_history.models import HistoricalChanges

    for app_label in project_apps():
        try:
            config = apps.get_app_config(app_label)
        except LookupError:
            continue
        for model in config.get_models():
            if issubclass(model, HistoricalChanges) or model._meta.auto_created:
                continue
            yield model


def history_model(model):
    manager_attr = getattr(model._meta, "simple_history_manager_attribute", None)
    if manager_attr is None:
        return None
    return getattr(model, manager_attr).model


def history_models() -> list[tuple[type, type]]:
    return [(m, history_model(m)) for m in project_models() if history_model(m) is not None]


def patient_q(model, patient_id: int) -> Q | None:
    """A filter selecting ``model``'s (or its history model's) rows about one patient, or None."""
    from pharmacy.models import Patient

    if model is Patient:
        return Q(id=patient_id)
    paths = []
    for field in model._meta.concrete_fields:
        related = getattr(field, "related_model", None)
        if not field.is_relation or related is None or field.name.startswith("history_"):
            continue
        if related is Patient:
            paths.append(f"{field.attname}")
    if not paths:
        for field in model._meta.concrete_fields:
            related = getattr(field, "related_model", None)
            if not field.is_relation or related is None or field.name.startswith("history_"):
                continue
            for inner in related._meta.concrete_fields:
                if inner.is_relation and getattr(inner, "related_model", None) is Patient:
                    paths.append(f"{field.name}__{inner.attname}")
                    break
    if not paths:
        return None
    query = Q()
    for path in paths:
        query |= Q(**{path: patient_id})
    return query
