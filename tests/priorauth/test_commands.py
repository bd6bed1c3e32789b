"""Criteria import (CSV/JSON, an error per bad row, nothing written on error), status command
and schedules."""

import json

import pytest
from django.core.management import CommandError, call_command

from priorauth.models import Payer, PayerCriteria

pytestmark = pytest.mark.django_db

CSV_HEADER = (
    "payer_name,bin,pcn,drug_name,therapeutic_class,benefit,diagnosis_prefixes,step_therapy,max_quantity,"
    "quantity_period_days,required_labs,rollout_mode,source\n"
)
GOOD = (
    'Blue Harbor,610014,MEDDPRIME,,glp1_agonist,pharmacy,E11,"[{""drugs"": [""metformin""], ""min_days"": 90}]",'
    '4,28,"[{""name"": ""HbA1c"", ""loinc_codes"": [""4548-4""], ""max_age_days"": 90}]",assist,Policy 2026\n'
)


def test_csv_import_creates_payer_and_criteria_with_history(tmp_path, capsys):
    path = tmp_path / "criteria.csv"
    path.write_text(CSV_HEADER + GOOD)
    call_command("import_pa_criteria", str(path))
    row = PayerCriteria.objects.get()
    assert (
        row.payer.bin == "610014"
        and row.diagnosis_prefixes == ["E11"]
        and row.step_therapy[0]["min_days"] == 90
    )
    assert row.history.get().history_user.username == "system:maintenance"
    call_command("import_pa_criteria", str(path))  # second run updates, not duplicates
    assert PayerCriteria.objects.count() == 1 and Payer.objects.count() == 1


def test_bad_rows_are_each_named_and_nothing_is_written(tmp_path, capsys):
    bad = [
        "Blue Harbor,61001X,,,glp1_agonist,pharmacy,E11,,,,,assist,\n",  # BIN
        "Blue Harbor,610014,,,,pharmacy,E11,,,,,assist,\n",  # neither drug nor class
        'Blue Harbor,610014,,semaglutide,,pharmacy,E11,"[{bad json",,,,assist,\n',
        "Blue Harbor,610014,,semaglutide,,pharmacy,E11,,4,,,sometimes,\n",  # qty w/o period; mode
    ]
    path = tmp_path / "criteria.csv"
    path.write_text(CSV_HEADER + GOOD + "".join(bad))
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_pa_criteria", str(path))
    err = capsys.readouterr().err
    assert "row 2: bin:" in err
    assert "row 3: drug_name: A drug name or a therapeutic class is required." in err
    assert "row 4: step_therapy: Not valid JSON" in err
    assert "row 5: quantity_period_days:" in err and "row 5: rollout_mode:" in err
    assert "row 1" not in err
    assert not PayerCriteria.objects.exists() and not Payer.objects.exists()


def test_json_import_and_dry_run(tmp_path, capsys):
    path = tmp_path / "criteria.json"
    path.write_text(
        json.dumps(
            {
                "criteria": [
                    {
                        "payer_name": "Medi Plan",
                        "bin": "004336",
                        "drug_name": "adalimumab",
                        "benefit": "medical",
                        "diagnosis_prefixes": ["M05", "M06"],
                        "rollout_mode": "shadow",
                    }
                ]
            }
        )
    )
    call_command("import_pa_criteria", str(path), "--dry-run")
    assert not PayerCriteria.objects.exists() and "valid" in capsys.readouterr().out
    call_command("import_pa_criteria", str(path))
    assert PayerCriteria.objects.get().benefit == "medical"


def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="Cannot read c.json"):
        call_command("import_pa_criteria", str(path))


def test_schedules_are_declared_and_sync(db):
    from django_q.models import Schedule

    from pharmacy.schedules import sync_schedules

    names = sync_schedules()
    assert {"rxhub:pa-poll", "rxhub:pa-expiry"} <= set(names)
    assert Schedule.objects.get(name="rxhub:pa-poll").func == "priorauth.tasks.poll_open_submissions"


def test_tasks_run(db):
    from priorauth import tasks

    assert tasks.poll_open_submissions() == "0 polled, 0 answers, 0 errors"
    assert tasks.expiry_sweep() == "0 expired, 0 renewals, 0 skipped"
    call_command("pa_status")
