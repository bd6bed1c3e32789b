"""Remove history rows and PHI access entries older than a date — explicitly, never as a side
effect. Without --confirm it only counts. The purge itself is an audit event."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from audit.services import history_purge, retention_days
from pharmacy.actors import system_actor
from pharmacy.errors import DomainError


class Command(BaseCommand):
    help = "Purge history and PHI access log rows older than --before (must be past the retention period)."

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, help="YYYY-MM-DD; rows strictly older are removed.")
        parser.add_argument("--confirm", action="store_true", help="Really delete (otherwise: count only).")

    def handle(self, *args, before, confirm, **options):
        try:
            cutoff = date.fromisoformat(before)
        except ValueError as exc:
            raise CommandError(f"--before: {before!r} is not a date (YYYY-MM-DD).") from exc
        try:
            counts = history_purge(
                before=cutoff, actor=system_actor("system:maintenance"), dry_run=not confirm
            )
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for label, count in sorted(counts.items()):
            if count:
                self.stdout.write(f"{label}: {count}")
        total = sum(counts.values())
        if confirm:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Purged {total} rows older than {cutoff} "
                    f"(retention {retention_days()} days); recorded in the audit chain."
                )
            )
        else:
            self.stdout.write(
                f"Dry run: {total} rows older than {cutoff} would be purged. Add --confirm to delete."
            )
