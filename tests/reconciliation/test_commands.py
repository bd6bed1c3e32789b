"""ingest_folder moves each file to done/ or failed/; pull_ehr_record reports an unreachable EHR."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from reconciliation.models import InboundMessage, ReconciliationTask

from .conftest import a03

DATA = Path(__file__).parent / "data"


def test_ingest_folder_moves_files_to_done_and_failed(linked_ada, tmp_path):
    (tmp_path / "discharge.hl7").write_text(a03(control_id="F-1"))
    (tmp_path / "summary.xml").write_bytes((DATA / "discharge_summary.xml").read_bytes())
    (tmp_path / "garbage.txt").write_text("not a clinical document")
    (tmp_path / "upload.hl7.part").write_text("MSH|")  # still being written: left alone
    out = StringIO()
    call_command("ingest_folder", str(tmp_path), stdout=out)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["discharge.hl7", "summary.xml"]
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == ["garbage.txt", "garbage.txt.error.txt"]
    assert "unrecognised format" in (tmp_path / "failed" / "garbage.txt.error.txt").read_text()
    assert (tmp_path / "upload.hl7.part").exists()
    assert InboundMessage.objects.filter(channel="folder").count() == 3
    assert ReconciliationTask.objects.filter(kind="discharge").count() == 2
    assert "2 done, 1 failed" in out.getvalue()


def test_pull_command_reports_a_patient_without_endpoint(linked_ada):
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("pull_ehr_record", str(linked_ada.pk), stderr=err)
    assert "no EHR link with a FHIR endpoint" in err.getvalue()


def test_ingest_folder_stores_hostile_files_rejected_and_moves_them_to_failed(db, tmp_path, settings):
    settings.RXHUB = {**settings.RXHUB, "RECON_MAX_PAYLOAD_BYTES": 4096}
    files = {
        "deep.json": b'{"resourceType": "Bundle", "entry": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        "surrogate.json": b'{"resourceType": "Patient", "id": "\\udc00"}',
        "bogus.xml": b'<?xml version="1.0" encoding="bogus"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>',
        "huge.hl7": a03(control_id="HUGE").encode() + b"OBX|1|TX|||" + b"x" * 100_000 + b"\r",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    call_command("ingest_folder", str(tmp_path), stdout=StringIO())
    assert sorted(p.name for p in (tmp_path / "failed").iterdir() if not p.name.endswith(".error.txt")) == sorted(
        files)
    stored = {m.source_name: m for m in InboundMessage.objects.all()}
    assert set(stored) == set(files) and {m.status for m in stored.values()} == {"rejected"}
    assert stored["huge.hl7"].payload_truncated and stored["huge.hl7"].size_bytes == len(files["huge.hl7"])
    assert len(stored["huge.hl7"].payload) == 4096
