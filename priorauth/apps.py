from django.apps import AppConfig


class PriorauthConfig(AppConfig):
    name = "priorauth"
    verbose_name = "Prior authorization"

    def ready(self) -> None:
        from pharmacy.messaging.outbox import register_delivery_hook

        from .services import on_submission_delivered

        register_delivery_hook("ncpdp:PA", on_submission_delivered)
        register_delivery_hook("fhir:pas", on_submission_delivered)

        # What this app adds to the shared pages and machinery (the core reads pharmacy/registry.py).
        from pharmacy.registry import MenuEntry
        from pharmacy.registry import register as register_contribution

        from . import demo, roles, selectors, tasks
        from .api import urls as api_urls

        register_contribution(
            self, urls="priorauth.urls", dashboard_card=selectors.queue_summary,
            patient_panels=selectors.patient_panels, prescription_actions=selectors.prescription_actions,
            menu=[MenuEntry("Prior auth", "priorauth:queue", "priorauth", order=40)],
            schedules=getattr(tasks, "SCHEDULES", []),
            api_register=api_urls.register,
            api_urlpatterns=api_urls.urlpatterns,
            role_permissions=roles.ROLE_PERMISSIONS,
            demo_seed=demo.seed,
        )
