"""Outbound FHIR (only after a pharmacist's action, only with consent to exchange), via the outbox."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta

from django.utils import timezone

from pharmacy.actors import Actor, SystemActor, is_system_user
from pharmacy.interop.fhir import build_communication, build_medication_dispense
from pharmacy.messaging.outbox import outbox_enqueue
from pharmacy.models import Fill, Patient
from pharmacy.rules.facts import fill_records
from pharmacy.rules.supply import pdc

from ..choices import (
    DiscrepancyStatus,
)
from ..conf import conf
from ..models import EhrLink, ReconciliationTask


def _consented_link(patient_id: int) -> EhrLink | None:
    return EhrLink.objects.filter(patient_id=patient_id, consent_to_exchange=True).order_by("-linked_at").first()


def _enqueue_fhir(link: EhrLink, *, kind: str, resource: dict, dedupe_key: str, actor: Actor, related,
                  reason: str):
    transport = link.outbound_transport if link.outbound_transport in ("file", "http") else "file"
    return outbox_enqueue(kind=kind, payload=json.dumps(resource, ensure_ascii=False), transport=transport,
                          destination=link.outbound_endpoint if transport == "http" else "",
                          content_type="application/fhir+json", dedupe_key=dedupe_key, related=related, actor=actor,
                          reason=reason, message_id=resource["id"])


def _send_summary(task: ReconciliationTask, *, actor: Actor) -> None:
    """FHIR R4 Communication to the primary prescriber: accepted changes and non-adherence."""
    link = _consented_link(task.patient_id)
    if link is None:
        return
    accepted = list(task.discrepancies.filter(status=DiscrepancyStatus.ACCEPTED).order_by("position", "id"))
    lines = [f"- {d.get_kind_display()}: {d.summary}" + (f" (note: {d.note})" if d.note else "") for d in accepted]
    lines += non_adherence_lines(task.patient)
    if not lines:
        return

    patient = task.patient
    prescriber = patient.primary_prescriber
    text = (f"Medication reconciliation {task.pk} completed by the pharmacy.\n" + "\n".join(lines))
    resource = build_communication(
        communication_id=f"recon-{task.pk}-{uuid.uuid4().hex[:8]}",
        patient_ref=f"Patient/{link.fhir_patient_id or link.external_id}",
        recipient_ref=f"Practitioner/{prescriber.npi}" if prescriber and prescriber.npi else "",
        text=text,
        sent=timezone.now(),
    )
    _enqueue_fhir(link, kind="fhir:Communication", resource=resource, dedupe_key=f"recon:{task.pk}:summary",
                  actor=actor, related=task, reason=f"Summary of reconciliation task {task.pk} for the prescriber")


def non_adherence_lines(patient: Patient) -> list[str]:
    today = timezone.localdate()
    window = conf("RECON_PDC_WINDOW_DAYS")
    threshold = conf("RECON_PDC_THRESHOLD")
    out = []
    fills_by_rx: dict[int, list] = {}
    for fill in Fill.objects.filter(prescription__patient=patient, prescription__status="active").select_related(
            "prescription__drug").order_by("fill_date"):
        fills_by_rx.setdefault(fill.prescription_id, []).append(fill)
    for fills in fills_by_rx.values():
        value = pdc(fill_records(fills), start=today - timedelta(days=window), end=today)
        if value < threshold:
            out.append(f"- Non-adherence: {fills[0].prescription.drug} PDC {value:.0%} over {window} days "
                       f"(below {threshold:.0%})")
    return out


def fill_recorded(*, fill: Fill, actor: Actor, reason: str = "") -> None:
    """Registry hook (``pharmacy.services.fill_record``, in the fill's transaction): a fill a person
    recorded is shared with a consenting EHR — not fills written by a system actor (issue 7:
    outbound after a pharmacist's action only)."""
    if actor is None or isinstance(actor, SystemActor) or is_system_user(actor):
        return
    dispense_share(fill=fill, actor=actor)


def dispense_share(*, fill, actor: Actor) -> None:
    """FHIR R4 MedicationDispense for a recorded fill, when the patient's EHR link has consent."""
    rx = fill.prescription
    link = _consented_link(rx.patient_id)
    if link is None:
        return

    handed = fill.picked_up_at or timezone.make_aware(datetime.combine(fill.fill_date, time(12, 0)))
    resource = build_medication_dispense(
        dispense_id=f"fill-{fill.pk}", patient_ref=f"Patient/{link.fhir_patient_id or link.external_id}",
        medication_code=rx.drug.rxcui or (rx.drug.ndc or ""), medication_system="rxnorm" if rx.drug.rxcui else "ndc",
        medication_text=str(rx.drug), quantity=fill.quantity, unit="", days_supply=fill.days_supply,
        when_handed_over=handed, prescription_ref=None, pharmacy_name=fill.pharmacy.name if fill.pharmacy_id else "")
    _enqueue_fhir(link, kind="fhir:MedicationDispense", resource=resource, dedupe_key=f"fill:{fill.pk}:dispense",
                  actor=actor, related=fill, reason=f"Dispense of fill {fill.pk} shared with {link.ehr_system}")
