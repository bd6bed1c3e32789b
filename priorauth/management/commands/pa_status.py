from django.core.management.base import BaseCommand

from priorauth.services import pa_expiry_sweep, pa_poll_open


class Command(BaseCommand):
    help = "Poll payers for open PA submissions and/or expire approvals and open renewals (same as the schedules)."

    def add_arguments(self, parser):
        parser.add_argument("--poll", action="store_true")
        parser.add_argument("--expiry", action="store_true")

    def handle(self, *args, poll, expiry, **options):
        if not poll and not expiry:
            poll = expiry = True
        if poll:
            self.stdout.write("Poll: " + ", ".join(f"{v} {k}" for k, v in pa_poll_open().items()))
        if expiry:
            self.stdout.write("Expiry: " + ", ".join(f"{v} {k}" for k, v in pa_expiry_sweep().items()))
