"""Walk the hash-chained audit trail; exit non-zero and name the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit event hash chain and report the first broken link."

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at {report.first_break} "
                f"({report.checked} events read, intact up to #{report.last_sequence})."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} events, last #{report.last_sequence}.")
        )
