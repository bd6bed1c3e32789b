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

        # What this app adds to the shared pages and machinery (the core reads pharmacy/registry.py).
        from pharmacy.registry import MenuEntry
        from pharmacy.registry import register as register_contribution

        from . import demo, roles, selectors, tasks
        from .api import urls as api_urls

        register_contribution(
            self, urls="reconciliation.urls", dashboard_card=selectors.queue_summary,
            patient_panels=selectors.patient_panels,
            menu=[MenuEntry("Reconciliation", "reconciliation:queue", "reconciliation", order=50)],
            schedules=getattr(tasks, "SCHEDULES", []),
            api_register=api_urls.register,
            api_urlpatterns=api_urls.urlpatterns,
            role_permissions=roles.ROLE_PERMISSIONS,
            demo_seed=demo.seed,
        )
