"""Reads shared by pages and the API."""
from __future__ import annotations

import re

from django.db.models import Prefetch, Q, QuerySet

from . import models
from .scoping import is_partner, scope_patients, scope_to_pharmacy
from .validators import normalize_phone


def patient_search_q(text: str) -> Q:
    """Name ("smith", "smith, john", "john smith"), MRN, phone digits or e-mail."""
    text = (text or "").strip()
    if not text:
        return Q()
    query = Q(mrn__iexact=text) | Q(email__iexact=text)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 10 and len(digits) >= len(text.replace(" ", "")) - 5:
        query |= Q(phone=normalize_phone(digits))
    elif len(digits) >= 7 and len(digits) >= len(text.replace(" ", "")) - 2:
        query |= Q(phone__endswith=f"{digits[-7:-4]}-{digits[-4:]}")
    if "," in text:
        last, first = (part.strip() for part in text.split(",", 1))
        query |= Q(last_name__istartswith=last, first_name__istartswith=first)
    else:
        words = text.split()
        if len(words) >= 2:
            query |= Q(first_name__istartswith=words[0], last_name__istartswith=words[-1])
            query |= Q(last_name__istartswith=words[0], first_name__istartswith=words[-1])
        query |= Q(last_name__istartswith=text) | Q(first_name__istartswith=text)
        query |= Q(owner_last_name__istartswith=text)
    return query


def patient_list(*, user=None, search: str = "") -> QuerySet[models.Patient]:
    qs = models.Patient.objects.select_related("facility", "preferred_pharmacy")
    if user is not None:
        qs = scope_patients(qs, user)  # a prescriber sees only their own patients
    if search:
        qs = qs.filter(patient_search_q(search))
    return qs.order_by("last_name", "first_name", "id")


def patient_detail(*, patient_id: int, user=None) -> models.Patient:
    prescriptions = models.Prescription.objects.select_related("drug", "prescriber", "pharmacy").order_by(
        "status", "-written_date"
    )
    patients = models.Patient.objects if user is None else scope_patients(models.Patient.objects.all(), user)
    return (
        patients.select_related("facility", "preferred_pharmacy", "primary_prescriber")
        .prefetch_related(
            Prefetch("prescriptions", queryset=prescriptions),
            Prefetch("allergies", queryset=models.Allergy.objects.order_by("status", "substance")),
            Prefetch("diagnoses", queryset=models.Diagnosis.objects.order_by("status", "code")),
            Prefetch("coverages", queryset=models.Coverage.objects.order_by("priority")),
            Prefetch("lab_results", queryset=models.LabResult.objects.order_by("-collected_at")),
            Prefetch("encounters", queryset=models.Encounter.objects.select_related("prescriber").order_by("-date")),
        )
        .get(pk=patient_id)
    )


def patient_fills(*, patient_id: int, limit: int = 50) -> list[models.Fill]:
    return list(
        models.Fill.objects.filter(prescription__patient_id=patient_id)
        .select_related("prescription__drug", "pharmacy")
        .order_by("-fill_date", "-id")[:limit]
    )


def allergy_flags_for(prescription_ids) -> dict[int, list[models.AllergyFlag]]:
    """Open allergy flags per prescription, for any queue that lists prescriptions."""
    out: dict[int, list[models.AllergyFlag]] = {}
    for flag in models.AllergyFlag.objects.filter(prescription_id__in=list(prescription_ids), cleared_at__isnull=True
                                           ).select_related("allergy"):
        out.setdefault(flag.prescription_id, []).append(flag)
    return out


def attach_allergy_flags(rows, *, prescription_id=lambda row: row.prescription_id) -> None:
    """Set ``row.allergy_flags`` on each row of a queue page (one query for the page)."""
    rows = list(rows)
    flags = allergy_flags_for({prescription_id(row) for row in rows})
    for row in rows:
        row.allergy_flags = flags.get(prescription_id(row), [])


# --- outbound messages on screen (issue 11 item 9) ---------------------------------------------------

def outbox_list(*, status: str = "", search: str = "") -> QuerySet[models.OutboxMessage]:
    """Outbound messages newest first; the payload (which may hold PHI) is not read for the list."""
    qs = models.OutboxMessage.objects.defer("payload", "response").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if search:
        qs = qs.filter(Q(kind__icontains=search) | Q(message_id__iexact=search) | Q(related_id=search))
    return qs


def outbox_status_counts() -> dict[str, int]:
    from django.db.models import Count

    rows = models.OutboxMessage.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows.values_list("status", "n"))


# --- pickers: find a person by name and birth date instead of typing an internal id -----------------

def patient_pick(*, user=None, text: str = "", birth_date=None, with_prescriptions: bool = False,
                 limit: int = 10) -> list[models.Patient]:
    """Patients matching a name (any order, "Last, First" too, MRN, phone) and/or a birth date, for
    the pickers (patient matching, triage). With prescriptions: the active ones, newest first."""
    text = (text or "").strip()
    if not text and not birth_date:
        return []
    qs = patient_list(user=user, search=text)
    if birth_date:
        qs = qs.filter(birth_date=birth_date)
    if with_prescriptions:
        active = models.Prescription.objects.filter(status="active").select_related("drug").order_by(
            "-written_date", "-id")
        qs = qs.prefetch_related(Prefetch("prescriptions", queryset=active, to_attr="active_prescriptions"))
    return list(qs[:limit])


def parse_birth_date(text: str):
    """A birth date typed as YYYY-MM-DD or MM/DD/YYYY; None when empty or unreadable."""
    from datetime import datetime

    text = (text or "").strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def scope_outbox(qs: QuerySet[models.OutboxMessage], *, user) -> QuerySet[models.OutboxMessage]:
    """Outbound messages a user may see: a partner only those about a record of its own pharmacies
    (any model with a ``pharmacy`` field: prescriptions, refill requests …), via related_model/id."""
    from django.apps import apps
    from django.db.models import CharField
    from django.db.models.functions import Cast

    if not is_partner(user):
        return qs
    allowed = Q(pk__in=[])
    labels = models.OutboxMessage.objects.exclude(related_model="").values_list("related_model", flat=True).distinct()
    for label in labels:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if any(f.name == "pharmacy" for f in model._meta.get_fields()):
            ids = scope_to_pharmacy(model.objects.all(), user).annotate(key=Cast("pk", CharField())).values("key")
            allowed |= Q(related_model=label, related_id__in=ids)
    return qs.filter(allowed)


def drugs_matching(text: str, *, ingredient: str = "", limit: int = 20) -> list[models.Drug]:
    """Active catalog drugs for a name as people write it ("DOXYCYCLINE HYCLATE 100MG", "Vibramycin",
    "doxycycline 100 mg cap"): the same key as the core normaliser gives (pharmacy/rules/drug_names.py),
    exact strength first. Also the catalog search offered when a name matches nothing."""
    from .rules.drug_names import default_catalog, name_strength, normalise_name, normalise_strength

    catalog = default_catalog()
    key = normalise_name(ingredient) if ingredient else catalog.ingredient(text)
    if not key:
        return []
    names = catalog.names.get(key, [])
    first = key.split()[0]
    qs = models.Drug.objects.filter(is_active=True).filter(Q(name__in=names) | Q(name__istartswith=first))
    rows = [d for d in qs.order_by("name", "strength", "id")[:500]
            if catalog.ingredient(d.name) == key or normalise_name(d.name).startswith(key)]
    wanted = name_strength(text)
    rows.sort(key=lambda d: (normalise_strength(d.strength) != wanted if wanted else False, d.name, d.strength))
    return rows[:limit]


def drug_interactions(prescription: models.Prescription) -> list:
    """ONC high-priority drug–drug interactions (pharmacy/rules/interactions.py) between this
    prescription's drug and the patient's other active prescriptions: one query."""
    from .rules.interactions import interactions

    others = (models.Prescription.objects.filter(patient_id=prescription.patient_id, status="active")
              .exclude(pk=prescription.pk).values_list("drug__name", flat=True))
    return interactions(prescription.drug.name, list(others))


def therapeutic_duplicates(prescription: models.Prescription, *, limit: int = 5) -> list[models.Prescription]:
    """Drug utilization review, therapeutic duplication (docs/standards.md: two active prescriptions
    in the same class): the patient's other active prescriptions in this drug's class; one query."""
    if not prescription.drug.therapeutic_class:
        return []
    return list(models.Prescription.objects.filter(
        patient_id=prescription.patient_id, status="active",
        drug__therapeutic_class=prescription.drug.therapeutic_class)
        .exclude(pk=prescription.pk).select_related("drug").order_by("pk")[:limit])
