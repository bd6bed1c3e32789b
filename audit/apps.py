from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (deploy check of the DB role; security events into the chain)
        from .immutability import connect_guards, install_after_migrate

        connect_guards()
        # After every migrate (whatever app created new history tables): re-install the
        # PostgreSQL append-only triggers. Idempotent; a no-op on SQLite.
        post_migrate.connect(install_after_migrate, dispatch_uid="audit.append_only_triggers")

        # What audit adds to the shared pages and machinery (the core reads pharmacy/registry.py).
        from pharmacy.registry import MenuEntry, register

        from . import roles, selectors, tasks

        register(self, urls="audit.urls", patient_panels=selectors.patient_panels,
                 menu=[MenuEntry("Audit", "audit:access-log", "audit", order=70)],
                 schedules=getattr(tasks, "SCHEDULES", []), role_permissions=roles.ROLE_PERMISSIONS)
