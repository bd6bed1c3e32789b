"""Structural tests: each SCRIPT 2017071 transaction's element paths, in document order, against
fixtures written from the schema facts (tests/data/ncpdp/structure/<variant>.txt; the facts are in
docs/ncpdp-2017071-schema-findings.md and docs/ncpdp.md). These run without the XSDs; with
NCPDP_XSD_DIR set, test_ncpdp_schema.py validates the same variants against the official schema.

Regenerate a fixture only after checking the change against the schema:
``python -m tests.interop.test_ncpdp_structure <variant>`` prints its paths."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.interop.ncpdp_variants import VARIANTS, build

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "ncpdp" / "structure"
BY_NAME = {v[0]: v for v in VARIANTS}


@pytest.fixture(autouse=True)
def _plain_http():
    yield


def paths(xml: str) -> list[str]:
    """Every element's path from Body's transaction down, in document order."""
    root = ET.fromstring(xml)
    out: list[str] = []

    def walk(el: ET.Element, prefix: str) -> None:
        for child in el:
            path = f"{prefix}/{child.tag}"
            out.append(path)
            walk(child, path)

    walk(root.find("Body"), "Body")
    return out


def test_every_variant_has_a_fixture():
    assert sorted(p.stem for p in FIXTURES.glob("*.txt")) == sorted(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_element_paths_and_order_match_the_fixture(name):
    expected = [line for line in (FIXTURES / f"{name}.txt").read_text().splitlines() if line]
    assert paths(build(BY_NAME[name])) == expected


def _children(xml: str, path: str) -> list[str]:
    el = ET.fromstring(xml).find(path)
    assert el is not None, path
    return [c.tag for c in el]


# The known failures of the old builders (docs/ncpdp-2017071-schema-findings.md), one assertion each.

def test_prescriber_identification_has_dea_number_before_npi():
    assert _children(build(BY_NAME["NewRx"]), "Body/NewRx/Prescriber/NonVeterinarian/Identification") == [
        "StateLicenseNumber", "DEANumber", "NPI"]


@pytest.mark.parametrize(("name", "path"), [
    ("NewRx", "Body/NewRx/Prescriber/NonVeterinarian"),
    ("PAInitiationRequest", "Body/PAInitiationRequest/Prescriber/NonVeterinarian"),
    ("RxFill-Dispensed", "Body/RxFill/Pharmacy"),
    ("RxRenewalRequest", "Body/RxRenewalRequest/Pharmacy"),
])
def test_communication_numbers_come_after_address(name, path):
    tags = _children(build(BY_NAME[name]), path)
    assert tags.index("Address") < tags.index("CommunicationNumbers") == len(tags) - 1


def test_quantity_and_number_of_refills_in_their_places():
    xml = build(BY_NAME["NewRx"])
    assert _children(xml, "Body/NewRx/MedicationPrescribed/Quantity") == [
        "Value", "CodeListQualifier", "QuantityUnitOfMeasure"]
    med = _children(xml, "Body/NewRx/MedicationPrescribed")
    assert med == ["DrugDescription", "DrugCoded", "Quantity", "DaysSupply", "WrittenDate", "LastFillDate",
                   "Substitutions", "NumberOfRefills", "Sig"]


@pytest.mark.parametrize("name", ["RxFill-Dispensed", "RxFill-PartiallyDispensed", "RxFill-NotDispensed",
                                  "RxRenewalResponse-Approved", "RxRenewalResponse-ApprovedWithChanges",
                                  "RxRenewalResponse-Denied", "RxRenewalResponse-Replace"])
def test_patient_is_present_where_the_schema_requires_it(name):
    tx = BY_NAME[name][1]
    tags = _children(build(BY_NAME[name]), f"Body/{tx}")
    assert "Patient" in tags
    if tx == "RxRenewalResponse":
        assert tags == ["Response", "Patient", "Pharmacy", "Prescriber", "MedicationResponse"]
    else:
        assert tags[:4] == ["FillStatus", "Patient", "Pharmacy", "Prescriber"]


def test_renewal_request_has_medication_dispensed_before_prescribed_with_requested_refills_inside():
    xml = build(BY_NAME["RxRenewalRequest-dispensed"])
    assert _children(xml, "Body/RxRenewalRequest") == ["Patient", "Pharmacy", "Prescriber", "MedicationDispensed",
                                                       "MedicationPrescribed"]
    assert _children(xml, "Body/RxRenewalRequest/MedicationDispensed")[-2:] == ["Sig", "PharmacyRequestedRefills"]


@pytest.mark.parametrize("name", ["PAInitiationRequest", "PARequest", "PAAppealRequest", "PACancelRequest",
                                  "PAInitiationResponse-Open", "PAResponse-Approved", "PAAppealResponse-Denied",
                                  "PACancelResponse-Approved"])
def test_epa_reference_comes_first_and_requests_carry_no_refill_history(name):
    xml = build(BY_NAME[name])
    tx = BY_NAME[name][1]
    tags = _children(xml, f"Body/{tx}")
    assert tags[0] == "PAReferenceID"
    if "MedicationPrescribed" in tags:
        med = _children(xml, f"Body/{tx}/MedicationPrescribed")
        assert "LastFillDate" not in med and "NumberOfRefills" not in med
    assert "Note" not in tags


def test_not_dispensed_has_a_reason_code_and_no_note_and_cancel_rx_has_no_note_of_its_own():
    assert _children(build(BY_NAME["RxFill-NotDispensed"]), "Body/RxFill/FillStatus/NotDispensed") == ["ReasonCode"]
    assert "Note" not in _children(build(BY_NAME["CancelRx"]), "Body/CancelRx")
    assert ET.fromstring(build(BY_NAME["CancelRx"])).findtext("Body/CancelRx/MedicationPrescribed/Note") == "Stopped"


def test_cancel_rx_response_denied_uses_its_own_code_set():
    xml = build(BY_NAME["CancelRxResponse-Denied"])
    assert ET.fromstring(xml).findtext("Body/CancelRxResponse/Response/Denied/ReasonCode") == "AR"
    assert _children(xml, "Body/CancelRxResponse") == ["Response"]


def test_veterinary_new_rx_uses_non_human_patient_with_species_code():
    xml = build(BY_NAME["NewRx-veterinary"])
    assert _children(xml, "Body/NewRx/Patient") == ["NonHumanPatient"]
    assert ET.fromstring(xml).findtext("Body/NewRx/Patient/NonHumanPatient/Species/Code") == "448771007"
    assert _children(xml, "Body/NewRx/Prescriber/Veterinarian")[:2] == ["Identification", "Specialty"]


if __name__ == "__main__":  # print a variant's paths, to review before updating its fixture
    print("\n".join(paths(build(BY_NAME[sys.argv[1]]))))
