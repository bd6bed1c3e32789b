from django.core.management.base import BaseCommand

from pharmacy.actors import system_actor
from refills.services import protocol_rules_load_defaults


class Command(BaseCommand):
    help = ("Load the shipped refill protocol rules (refills/protocol_defaults.py, each with its source) "
            "as rows an admin edits. New rules start in shadow mode.")

    def add_arguments(self, parser):
        parser.add_argument("--replace", action="store_true",
                            help="Overwrite conditions of rules already present (their mode is kept).")

    def handle(self, *args, replace, **options):
        created, updated = protocol_rules_load_defaults(actor=system_actor("system:maintenance"), replace=replace)
        self.stdout.write(self.style.SUCCESS(f"Protocol rules: {created} created, {updated} updated."))
