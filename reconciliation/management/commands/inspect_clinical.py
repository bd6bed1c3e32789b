"""``manage.py inspect_clinical FILE… [--json]``: read clinical files and show what they contain.

No database access. Each file is read with the HL7 v2, FHIR R4 or C-CDA reader (chosen by sniffing
its first bytes). The exit code is 0 even when some files cannot be read (the error is part of the
output) and 2 when a path does not exist.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pharmacy.interop.summary import error_summary, format_summary, summarize_file


class Command(BaseCommand):
    help = "Read HL7 v2 / FHIR R4 / C-CDA files and summarise the patient, medications and allergies."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="files to read")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="one JSON object per file per line"
        )

    def handle(self, *args, files: list[str], as_json: bool = False, **options):
        missing: list[str] = []
        for name in files:
            if not Path(name).exists():
                missing.append(name)
                summary = error_summary(name, "no such file")
            else:
                try:
                    summary = summarize_file(name)
                except OSError as exc:  # a directory, an unreadable file …
                    summary = error_summary(name, f"cannot read: {exc.strerror or exc}")
            if as_json:
                self.stdout.write(json.dumps(summary, ensure_ascii=False))
            else:
                self.stdout.write(format_summary(summary) + "\n")
        if missing:
            raise CommandError(f"no such file: {', '.join(missing)}", returncode=2)
