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
