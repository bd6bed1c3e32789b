from django.core.management.base import BaseCommand, CommandError

from pharmacy.progress import Progress
from refills.conf import lookahead_days
from refills.detection import candidate_prescriptions, detect_refills, evaluate_opened


class Command(BaseCommand):
    help = "Open refill/renewal requests for prescriptions that run out within the look-ahead window."

    def add_arguments(self, parser):
        parser.add_argument("--lookahead", type=int, default=None, help="Days ahead (default from settings, 7).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would open; write nothing.")
        parser.add_argument(
            "--no-evaluate", action="store_true", help="Open requests only; leave evaluation to workers."
        )

    def handle(self, *args, lookahead, dry_run, no_evaluate, **options):
        from django.utils import timezone

        lookahead = lookahead_days() if lookahead is None else lookahead
        if lookahead < 0:
            raise CommandError("--lookahead must be zero or more days.")
        total = candidate_prescriptions(timezone.localdate(), lookahead).count()
        progress = Progress("Checking prescriptions", total, stream=self.stdout)
        result = detect_refills(lookahead=lookahead, dry_run=dry_run, progress=progress)
        progress.finish()
        verb = "would open" if dry_run else "opened"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.by_kind.items())) or "none"
        self.stdout.write(f"{result.examined} prescriptions checked, {result.due} due within {lookahead} days "
                          f"({kinds}); {verb} {result.due if dry_run else result.opened} request(s)"
                          + (f", {result.skipped_open} already had one" if result.skipped_open else "") + ".")
        if dry_run or no_evaluate or not result.request_ids:
            return
        progress = Progress("Applying refill protocol", len(result.request_ids), stream=self.stdout)
        outcome = evaluate_opened(result.request_ids, progress=progress)
        progress.finish()
        self.stdout.write(
            self.style.SUCCESS("Evaluation: " + ", ".join(f"{n} {s}" for s, n in sorted(outcome.items())))
        )
