from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pharmacy.actors import system_actor
from priorauth.importer import import_criteria, read_rows


class Command(BaseCommand):
    help = (
        "Import payer PA criteria from a CSV or JSON file (all rows checked; any bad row → nothing written)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=["csv", "json"], help="Default: from the file extension.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row; write nothing.")

    def handle(self, *args, path, format, dry_run, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        fmt = format or ("json" if file.suffix.lower() == ".json" else "csv")
        try:
            rows = read_rows(file.read_text(encoding="utf-8-sig"), fmt)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file.name}: {exc}") from exc
        result = import_criteria(rows, actor=system_actor("system:maintenance"), dry_run=dry_run)
        for line in result.errors:
            self.stderr.write(line)
        if result.errors:
            raise CommandError(f"{len(result.errors)} error(s) in {result.rows} row(s); nothing imported.")
        if dry_run:
            self.stdout.write(f"{result.rows} row(s) valid; nothing written (dry run).")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{result.rows} row(s): {result.created} created, {result.updated} updated."
                )
            )
