"""Evidence gathering: map the patient's records to citable items and to criteria facts.

Each item: ``{"id", "kind", "text", "source", "data"}``; ``id`` is what drafts cite ("dx:12"),
``source`` says where it came from (model, record id, origin system, date).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from pharmacy.models import Coverage, Diagnosis, Fill, LabResult, Prescription
from pharmacy.validators import icd10cm_description, validate_icd10cm

from . import criteria as c
from .conf import lab_lookback_days


def _valid_icd10(code: str) -> bool:
    try:
        validate_icd10cm(code)
    except ValidationError:
        return False
    return True


def gather(*, rx: Prescription, coverage: Coverage | None, today: date | None = None) -> list[dict]:
    today = today or timezone.localdate()
    patient, drug, prescriber = rx.patient, rx.drug, rx.prescriber
    items: list[dict] = [
        {
            "id": f"patient:{patient.pk}",
            "kind": "patient",
            "text": f"{patient.full_name}, born {patient.birth_date}",
            "source": f"Patient record {patient.mrn}",
            "data": {
                "name": patient.full_name,
                "first_name": patient.first_name,
                "last_name": patient.last_name,
                "birth_date": patient.birth_date.isoformat(),
                "sex": patient.sex,
            },
        },
        {
            "id": f"rx:{rx.pk}",
            "kind": "medication",
            "text": f"{drug} — {rx.quantity.normalize():f} for {rx.days_supply} days, {rx.sig}",
            "source": f"Prescription {rx.rx_number or rx.pk} written {rx.written_date}",
            "data": {
                "description": str(drug),
                "ndc": drug.ndc or "",
                "quantity": f"{rx.quantity.normalize():f}",
                "days_supply": rx.days_supply,
                "sig": rx.sig,
                "drug_class": drug.therapeutic_class,
            },
        },
        {
            "id": f"prescriber:{prescriber.pk}",
            "kind": "prescriber",
            "text": f"{prescriber}{', NPI ' + prescriber.npi if prescriber.npi else ''}",
            "source": f"Prescriber record {prescriber.pk}",
            "data": {
                "name": str(prescriber),
                "npi": prescriber.npi or "",
                "first_name": prescriber.first_name,
                "last_name": prescriber.last_name,
                "phone": prescriber.phone,
            },
        },
    ]
    if coverage is not None:
        items.append(
            {
                "id": f"coverage:{coverage.pk}",
                "kind": "coverage",
                "text": f"{coverage.payer_name}, BIN {coverage.bin}, PCN {coverage.pcn or '—'}, "
                f"group {coverage.group or '—'}",
                "source": f"Coverage record {coverage.pk}",
                "data": {
                    "payer_name": coverage.payer_name,
                    "bin": coverage.bin,
                    "pcn": coverage.pcn,
                    "group": coverage.group,
                    "member_id": coverage.member_id,
                },
            }
        )
    if rx.indication_code and _valid_icd10(rx.indication_code):
        items.append(
            {
                "id": f"indication:{rx.pk}",
                "kind": "indication",
                "text": f"{rx.indication_code} {icd10cm_description(rx.indication_code)}".strip(),
                "source": f"Indication on prescription {rx.rx_number or rx.pk}",
                "data": {"code": rx.indication_code},
            }
        )
    for dx in Diagnosis.objects.filter(patient=patient).order_by("code"):
        if not _valid_icd10(dx.code):  # only valid ICD-10-CM codes count as evidence
            continue
        items.append(
            {
                "id": f"dx:{dx.pk}",
                "kind": "diagnosis",
                "text": f"{dx.code} {dx.description}".strip(),
                "source": f"Diagnosis record {dx.pk} ({dx.get_source_display()}"
                f"{', onset ' + str(dx.onset_date) if dx.onset_date else ''})",
                "data": {"code": dx.code, "active": dx.status == "active", "status": dx.status},
            }
        )
    # Prior therapies: other drugs' fill history (step-therapy evidence), one item per drug.
    fills = (
        Fill.objects.filter(prescription__patient=patient)
        .exclude(prescription__drug=drug)
        .exclude(status__in=["not_dispensed", "returned"])
        .select_related("prescription__drug")
        .order_by("fill_date")
    )
    by_drug: dict[int, list[Fill]] = defaultdict(list)
    for fill in fills:
        by_drug[fill.prescription.drug_id].append(fill)
    for drug_fills in by_drug.values():
        other = drug_fills[0].prescription.drug
        start = drug_fills[0].fill_date
        end = max(f.fill_date + timedelta(days=f.days_supply - 1) for f in drug_fills)
        covered = set()
        for f in drug_fills:
            covered.update(f.fill_date + timedelta(days=i) for i in range(f.days_supply))
        items.append(
            {
                "id": f"therapy:{other.pk}",
                "kind": "therapy",
                "text": f"{other.name} from {start} to {end} ({len(covered)} days supplied, {len(drug_fills)} fills)",
                "source": f"Fill history, fills {', '.join(str(f.pk) for f in drug_fills[:10])}",
                "data": {
                    "drug_name": other.name,
                    "drug_class": other.therapeutic_class,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "days": len(covered),
                },
            }
        )
    since = timezone.now() - timedelta(days=lab_lookback_days())
    for lab in LabResult.objects.filter(patient=patient, collected_at__gte=since).order_by("-collected_at")[
        :20
    ]:
        collected = timezone.localtime(lab.collected_at).date()
        items.append(
            {
                "id": f"lab:{lab.pk}",
                "kind": "lab",
                "text": f"{lab.name} {lab.value} {lab.unit} on {collected}".replace("  ", " "),
                "source": f"Lab result {lab.pk} ({lab.get_source_display()}, LOINC {lab.loinc_code})",
                "data": {
                    "loinc": lab.loinc_code,
                    "name": lab.name,
                    "value": lab.value,
                    "collected": collected.isoformat(),
                    "abnormal": lab.abnormal_flag,
                },
            }
        )
    return items


def facts_from(*, evidence: list[dict], rx: Prescription, today: date) -> c.RequestFacts:
    dx = tuple(
        c.DiagnosisFact(
            code=e["data"]["code"], description=e["text"], active=e["data"]["active"], evidence_id=e["id"]
        )
        for e in evidence
        if e["kind"] == "diagnosis"
    )
    therapies = tuple(
        c.TherapyFact(
            drug_name=e["data"]["drug_name"],
            drug_class=e["data"]["drug_class"],
            start=date.fromisoformat(e["data"]["start"]),
            end=date.fromisoformat(e["data"]["end"]),
            days=e["data"]["days"],
            evidence_id=e["id"],
        )
        for e in evidence
        if e["kind"] == "therapy"
    )
    labs = tuple(
        c.LabFact(
            loinc=e["data"]["loinc"],
            name=e["data"]["name"],
            value=e["data"]["value"],
            collected=date.fromisoformat(e["data"]["collected"]),
            evidence_id=e["id"],
        )
        for e in evidence
        if e["kind"] == "lab"
    )
    indication = next((e for e in evidence if e["kind"] == "indication"), None)
    return c.RequestFacts(
        quantity=rx.quantity,
        days_supply=rx.days_supply,
        indication_code=indication["data"]["code"] if indication else "",
        indication_evidence_id=indication["id"] if indication else "",
        diagnoses=dx,
        therapies=therapies,
        labs=labs,
        today=today,
    )
