"""``manage.py pull_ehr_record PATIENT_ID…``: read active MedicationRequest, AllergyIntolerance and
Condition from each patient's EHR FHIR endpoint and open a reconciliation task if anything differs."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from pharmacy.actors import system_actor
from pharmacy.errors import DomainError
from reconciliation.services import pull_ehr_record


class Command(BaseCommand):
    help = "Pull a linked patient's record from the EHR (FHIR R4) and reconcile it."

    def add_arguments(self, parser):
        parser.add_argument("patient_ids", nargs="+", type=int, metavar="PATIENT_ID")

    def handle(self, *args, patient_ids, **options):
        actor = system_actor("system:reconciliation")
        failures = 0
        for patient_id in patient_ids:
            try:
                message = pull_ehr_record(patient_id=patient_id, actor=actor)
            except DomainError as exc:
                failures += 1
                self.stderr.write(f"patient {patient_id}: {exc}")
                continue
            tasks = message.summary.get("tasks", []) if isinstance(message.summary, dict) else []
            self.stdout.write(f"patient {patient_id}: message {message.pk} {message.status}, tasks {tasks}")
        if failures:
            raise SystemExit(1)
