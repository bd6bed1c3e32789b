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
