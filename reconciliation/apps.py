from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Medication reconciliation"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from pharmacy.inbound import register
        from pharmacy.models import Fill

        from . import receivers
        from .services import PIPELINE

        register(PIPELINE)  # swept and retried by the core's rxhub:inbound-sweep schedule

        # A recorded fill is shared with a consenting EHR (FHIR MedicationDispense).
        post_save.connect(receivers.fill_recorded, sender=Fill, dispatch_uid="reconciliation-dispense-share")
