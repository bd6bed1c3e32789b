from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from .roles import sync_role_permissions

    sync_role_permissions()


class PharmacyConfig(AppConfig):
    name = "pharmacy"
    verbose_name = "Pharmacy"

    def ready(self) -> None:
        # Runs once after all apps migrate (sender = the last app is fine; it is idempotent).
        post_migrate.connect(_sync_roles, dispatch_uid="pharmacy.sync_roles")

        from django.db.models.signals import post_save

        from . import checks, receivers  # noqa: F401  (checks: deploy check of RXHUB_PUBLIC_BASE_URL)
        from .models import Prescription

        # The allergy flag of a new prescription (was connected by reconciliation before issue 12;
        # the uid is kept so nothing connects it twice).
        post_save.connect(receivers.prescription_created, sender=Prescription,
                          dispatch_uid="reconciliation-allergy-check")

        # What the core itself adds to the shared menu and schedules (the apps add theirs the same way).
        from . import registry, tasks
        from .context_processors import CORE_MENU

        registry.register(self, menu=CORE_MENU, schedules=tasks.SCHEDULES)

        from django.core.signals import got_request_exception

        from .db_outage import mark_database_failure

        got_request_exception.connect(mark_database_failure, dispatch_uid="pharmacy.db_outage")
