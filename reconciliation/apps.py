from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Medication reconciliation"

    def ready(self) -> None:
        from pharmacy.inbound import register

        from .services import PIPELINE, fill_recorded

        register(PIPELINE)  # swept and retried by the core's rxhub:inbound-sweep schedule

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
            # A fill a person recorded is shared with a consenting EHR (FHIR MedicationDispense),
            # called by pharmacy.services.fill_record in the fill's transaction.
            fill_recorded=fill_recorded,
        )
