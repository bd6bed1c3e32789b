from django.apps import AppConfig


class RefillsConfig(AppConfig):
    name = "refills"
    verbose_name = "Refills and renewals"

    def ready(self) -> None:
        from pharmacy.messaging.outbox import register_delivery_hook

        from .services import on_authorization_delivered

        register_delivery_hook("ncpdp:", on_authorization_delivered)
