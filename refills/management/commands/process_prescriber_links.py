from django.core.management.base import BaseCommand

from refills.links import prescriber_links_process, reminder_hours


class Command(BaseCommand):
    help = ("Remind prescribers of approval links unanswered for PRESCRIBER_REMINDER_HOURS and escalate expired "
            "links to the pharmacist queue (the same work as the rxhub:prescriber-links schedule).")

    def handle(self, *args, **options):
        run = prescriber_links_process()
        self.stdout.write(f"Prescriber links: {run} (reminders after {reminder_hours()} h).")
