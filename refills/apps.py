from django.apps import AppConfig


class RefillsConfig(AppConfig):
    name = "refills"
    verbose_name = "Refills and renewals"

    def ready(self) -> None:
        from pharmacy.inbound import register
        from pharmacy.messaging.outbox import register_delivery_hook, register_payload_renderer
        from pharmacy.services import register_pharmacy_change_handler

        from .inbound import PIPELINE
        from .links import KIND_PREFIX, link_create_and_send, render_link_message
        from .services import on_authorization_delivered, prescription_change_pharmacy, register_prescriber_sender

        register(PIPELINE)  # swept and retried by the core's rxhub:inbound-sweep schedule
        register_delivery_hook("ncpdp:", on_authorization_delivered)
        register_prescriber_sender(link_create_and_send)  # forwarding sends the signed link
        # The core API moves a prescription to another pharmacy through this (CancelRx to the old one).
        register_pharmacy_change_handler(prescription_change_pharmacy)
        # Prescriber links: the outbox keeps a placeholder; the URL is put in at delivery.
        for channel in ("email", "sms"):
            register_payload_renderer(f"{channel}:{KIND_PREFIX}", render_link_message)

        # What this app adds to the shared pages and machinery (the core reads pharmacy/registry.py).
        from pharmacy.registry import MenuEntry
        from pharmacy.registry import register as register_contribution

        from . import demo, roles, selectors, tasks
        from .api import urls as api_urls

        register_contribution(
            self, urls="refills.urls", dashboard_card=selectors.queue_summary,
            patient_panels=selectors.patient_panels,
            menu=[MenuEntry("Refills", "refills:queue", "refills", order=30)],
            schedules=getattr(tasks, "SCHEDULES", []),
            api_register=api_urls.register,
            api_urlpatterns=api_urls.urlpatterns,
            role_permissions=roles.ROLE_PERMISSIONS,
            demo_seed=demo.seed,
            exports={"controlled_substance_decisions": selectors.controlled_substance_decisions},
        )
