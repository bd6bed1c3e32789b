"""Walk the keyed hash chain; with --anchor also compare it with the append-only anchor file.
Exit non-zero and name the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from audit.anchor import verify_anchor_file
from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit event chain (HMAC-keyed) and report the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--anchor", metavar="FILE",
                            help="Anchor file (RXHUB_AUDIT_ANCHOR_FILE) to compare with: detects a truncated chain.")

    def handle(self, *args, anchor=None, **options):
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at {report.first_break} "
                f"({report.checked} events read, intact up to #{report.last_sequence})."
            )
        extra = ""
        if anchor:
            count, problem = verify_anchor_file(anchor)
            if problem:
                raise CommandError(f"Audit chain BROKEN against the anchor file {anchor}: {problem}")
            extra = f"; {count} anchors in {anchor} match"
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} events, last #{report.last_sequence}{extra}.")
        )
