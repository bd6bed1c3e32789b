"""Append the current chain head to the anchor file now (also a daily schedule)."""

from django.core.management.base import BaseCommand

from audit.anchor import anchor_now, anchor_path


class Command(BaseCommand):
    help = "Write the audit chain's current sequence and hash to the append-only anchor file."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="Anchor file (default RXHUB_AUDIT_ANCHOR_FILE).")

    def handle(self, *args, file=None, **options):
        anchored = anchor_now(path=file)
        target = file or anchor_path()
        if anchored is None:
            self.stdout.write("The audit chain is empty: nothing to anchor.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Anchored #{anchored[0]} in {target}."))
