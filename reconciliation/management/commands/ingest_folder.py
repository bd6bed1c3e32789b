"""``manage.py ingest_folder DIR``: ingest files dropped by a Direct Secure Messaging gateway or an
SFTP drop (HL7 v2, FHIR JSON, C-CDA XML). Each file is stored and processed, then moved to
``DIR/done/`` or — when it could not be read or processing failed — ``DIR/failed/`` with a
``.error.txt`` beside it. The stored message keeps the error for retry either way."""
from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reconciliation.choices import Channel
from reconciliation.conf import conf
from reconciliation.services import ingest

SKIP_SUFFIXES = (".part", ".tmp", ".filepart", ".error.txt")


def _target(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


class Command(BaseCommand):
    help = "Ingest every file in DIR and move it to DIR/done/ or DIR/failed/."

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR")

    def handle(self, *args, directory: str, **options):
        base = Path(directory)
        if not base.is_dir():
            raise CommandError(f"{directory} is not a directory", returncode=2)
        done = failed = 0
        for path in sorted(p for p in base.iterdir() if p.is_file()):
            if path.name.startswith(".") or path.name.endswith(SKIP_SUFFIXES):
                continue  # still being written by the gateway, or our own error note
            limit = conf("RECON_MAX_PAYLOAD_BYTES")
            with path.open("rb") as handle:  # never more than the limit + 1 bytes in memory
                head = handle.read(limit + 1)
            result = ingest(channel=Channel.FOLDER, payload=head, source_name=path.name,
                            size=max(len(head), path.stat().st_size))
            if result.ack_code == "AA":
                os.replace(path, _target(base / "done", path.name))
                done += 1
                self.stdout.write(f"done    {path.name}: {result.message.get_status_display()} "
                                  f"(message {result.message.pk})")
            else:
                target = _target(base / "failed", path.name)
                os.replace(path, target)
                target.with_name(target.name + ".error.txt").write_text(result.error + "\n", encoding="utf-8")
                failed += 1
                self.stdout.write(f"failed  {path.name}: {result.error} (message {result.message.pk})")
        self.stdout.write(self.style.SUCCESS(f"{done} done, {failed} failed"))
