from django.apps import AppConfig
from django.conf import settings
from django.core.signals import got_request_exception
from django.db.models.signals import post_migrate
from django.test.signals import setting_changed

from .interop.ncpdp import schema as ncpdp_schema


def _sync_roles(sender, **kwargs):
    from .roles import sync_role_permissions

    sync_role_permissions()


def _configure_ncpdp_schema(**kwargs) -> None:
    """Hand the pure NCPDP codec its XSD folder (settings.RXHUB["NCPDP_XSD_DIR"]; "" = off); again
    when a test overrides RXHUB."""
    if kwargs.get("setting", "RXHUB") == "RXHUB":
        ncpdp_schema.configure(settings.RXHUB.get("NCPDP_XSD_DIR", ""))


class PharmacyConfig(AppConfig):
    name = "pharmacy"
    verbose_name = "Pharmacy"

    def ready(self) -> None:
        # Runs once after all apps migrate (sender = the last app is fine; it is idempotent).
        post_migrate.connect(_sync_roles, dispatch_uid="pharmacy.sync_roles")

        # No post_save receiver writes domain rows: the allergy flags of a new prescription are raised
        # by pharmacy.services.prescription_create, the apps hear of new fills through the registry's
        # fill_recorded hooks (pharmacy.services.fill_record), with the creating actor and a reason (issue 12).
        # checks: the deploy check of RXHUB_PUBLIC_BASE_URL.
        # What the core itself adds to the shared menu and schedules (the apps add theirs the same way).
        from . import checks, registry, tasks  # noqa: F401
        from .context_processors import CORE_MENU

        registry.register(self, menu=CORE_MENU, schedules=tasks.SCHEDULES)

        _configure_ncpdp_schema()
        setting_changed.connect(_configure_ncpdp_schema, dispatch_uid="pharmacy.ncpdp_schema")

        from .db_outage import mark_database_failure

        got_request_exception.connect(mark_database_failure, dispatch_uid="pharmacy.db_outage")
