"""Public NCPDP SCRIPT samples (tests/data/ncpdp/public, MANIFEST and LICENSES there): each is read or
refused with its exact reason — never a misleading element error, never a crash."""
from __future__ import annotations

from pathlib import Path

import pytest

from pharmacy.interop import ncpdp as n

PUBLIC = Path(__file__).resolve().parent.parent / "data" / "ncpdp" / "public"
ROWS = [line.split("\t") for line in (PUBLIC / "MANIFEST").read_text().splitlines()
        if line and not line.startswith("#")]


@pytest.fixture(autouse=True)
def _plain_http():
    yield


def test_every_sample_is_in_the_manifest_with_its_licence():
    files = sorted(str(p.relative_to(PUBLIC)) for p in PUBLIC.rglob("*.xml"))
    assert sorted(row[0] for row in ROWS) == files and len(files) >= 30
    assert (PUBLIC / "cosyte-ncpdp" / "LICENSE").read_text().startswith("MIT License")
    assert "cosyte-ncpdp/" in (PUBLIC / "LICENSES").read_text()


@pytest.mark.parametrize(("name", "outcome", "what"), ROWS, ids=[r[0] for r in ROWS])
def test_public_sample_is_read_or_refused_with_the_exact_reason(name, outcome, what):
    data = (PUBLIC / name).read_bytes()
    if outcome == "read":
        assert n.parse_message(data).transaction == what
        return
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(data)
    assert f"error {exc.value.code}" == outcome and exc.value.element == what
    assert what in exc.value.description
    if exc.value.code == "601":  # another SCRIPT version: the Error says which was found and what is supported
        assert "found; this receiver supports SCRIPT 2017071" in exc.value.description


@pytest.mark.parametrize(("name", "found"), [
    ("cosyte-ncpdp/legacy-version.xml", "SCRIPT 10.6"),
    ("cosyte-ncpdp/surescripts-version-2023011.xml", "SCRIPT 2023011"),
    ("cosyte-ncpdp/newrx-no-version.xml", "no SCRIPT version"),
])
def test_version_refusals_name_the_version_found(name, found):
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message((PUBLIC / name).read_bytes())
    assert found in exc.value.description


def test_a_sample_with_its_header_completed_is_read():
    """newrx-basic.xml with the Qualifier attributes 2017071 requires: then it reads as a NewRx."""
    xml = (PUBLIC / "cosyte-ncpdp" / "newrx-basic.xml").read_text()
    xml = xml.replace("<To>", '<To Qualifier="P">').replace("<From>", '<From Qualifier="D">')
    msg = n.parse_message(xml)
    assert msg.transaction == "NewRx" and msg.patient.last_name == "Testpatient"
    assert msg.prescriber.npi == "1888888888" and msg.medication_prescribed.description
