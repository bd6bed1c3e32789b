from django.apps import AppConfig


class PriorauthConfig(AppConfig):
    name = "priorauth"
    verbose_name = "Prior authorization"

    def ready(self) -> None:
        from pharmacy.messaging.outbox import register_delivery_hook

        from .services import on_submission_delivered

        register_delivery_hook("ncpdp:PA", on_submission_delivered)
        register_delivery_hook("fhir:pas", on_submission_delivered)
