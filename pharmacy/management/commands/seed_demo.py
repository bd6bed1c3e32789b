from django.core.management.base import BaseCommand, CommandError

from pharmacy.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo
from pharmacy.models import Facility


class Command(BaseCommand):
    help = "Create a realistic, deterministic demo data set (users for every role, patients, animals, prescriptions…)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when demo data already exists.")
        parser.add_argument("--seed", type=int, default=20261124, help="Random seed (same seed, same data).")

    def handle(self, *args, **options):
        if Facility.objects.filter(code__in=["MAIN", "VET"]).exists():
            if options["if_empty"]:
                self.stdout.write("Demo data already present; nothing to do.")
                self._print_logins()
                return
            raise CommandError("Demo data already present (facility MAIN/VET exists). Use a fresh database.")
        ctx = seed_demo(stdout=self.stdout, seed=options["seed"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(ctx.patients)} patients, {len(ctx.animals)} animals, "
                f"{len(ctx.prescriptions)} prescriptions."
            )
        )
        self._print_logins(token=ctx.users.get("integrator_token"))

    def _print_logins(self, token: str | None = None):
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for username, role, *_ in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {role}")
        if token:
            self.stdout.write(f"  integrator API token: {token}")
