from django.core.management.base import BaseCommand

from pharmacy.actors import system_actor
from pharmacy.catalog import drug_catalog_load


class Command(BaseCommand):
    help = "Load the shipped catalog of commonly dispensed drugs (existing rows are kept as they are)."

    def handle(self, *args, **options):
        created, present = drug_catalog_load(actor=system_actor("system:maintenance"))
        self.stdout.write(self.style.SUCCESS(f"Drug catalog: {created} added, {present} already present."))
