from django.core.management.base import BaseCommand

from pharmacy.schedules import sync_schedules


class Command(BaseCommand):
    help = "Create or update the recurring django-q2 schedules declared in each app's tasks.SCHEDULES."

    def handle(self, *args, **options):
        names = sync_schedules()
        self.stdout.write(self.style.SUCCESS(f"{len(names)} schedule(s) in place: {', '.join(names) or 'none'}"))
