"""Fixtures for reconciliation tests: HL7 messages built line by line, a patient with active
prescriptions from the shipped catalog."""
from __future__ import annotations

from datetime import date

import pytest

from tests.factories import PatientFactory, PrescriberFactory, PrescriptionFactory


def hl7(*segments: str) -> str:
    return "\r".join(segments) + "\r"


def a03(control_id="CTRL0001", mrn="MRN12345", authority="GENHOSP", family="LOVELACE", given="ADA",
        birth="19600105", sex="F", meds=("WARFARIN 5MG DAILY", "METFORMIN 500MG BID"), allergies=(), sender="EPIC"):
    """ADT^A03 (HL7 v2.5.1 ch. 3.3.3): discharge; medications as OBX TX lines (LOINC 10183-2)."""
    segs = [f"MSH|^~\\&|{sender}|{authority}|RXHUB|PHARM|20261130101500||ADT^A03^ADT_A03|{control_id}|P|2.5.1",
            "EVN|A03|20261130101500",
            f"PID|1||{mrn}^^^{authority}^MR||{family}^{given}||{birth}|{sex}",
            "PV1|1|I|4W^401^A"]
    for i, allergy in enumerate(allergies, 1):
        segs.append(f"AL1|{i}|DA|{allergy}|SV|Hives")
    for i, line in enumerate(meds, 1):
        segs.append(f"OBX|{i}|TX|10183-2^Hospital discharge medications^LN|{i}|{line}||||||F")
    return hl7(*segs)


@pytest.fixture
def catalog_drugs(db):
    from pharmacy.actors import system_actor
    from pharmacy.catalog import drug_catalog_load

    drug_catalog_load(actor=system_actor("system:maintenance"))
    from pharmacy.models import Drug

    return Drug.objects


@pytest.fixture
def ada(db, catalog_drugs):
    """Ada Lovelace, born 1960-01-05, on warfarin 5 mg daily and lisinopril 10 mg daily."""
    prescriber = PrescriberFactory()
    patient = PatientFactory(first_name="Ada", last_name="Lovelace", birth_date=date(1960, 1, 5), sex="F",
                             primary_prescriber=prescriber)
    warfarin = catalog_drugs.filter(name="warfarin", strength="5 mg").first()
    lisinopril = catalog_drugs.filter(name="lisinopril", strength="10 mg").first()
    rx_w = PrescriptionFactory(patient=patient, drug=warfarin, prescriber=prescriber,
                               sig="Take 1 tablet by mouth daily")
    rx_l = PrescriptionFactory(patient=patient, drug=lisinopril, prescriber=prescriber,
                               sig="Take 1 tablet by mouth daily")
    patient.rx_warfarin, patient.rx_lisinopril = rx_w, rx_l
    return patient


@pytest.fixture
def linked_ada(ada):
    from reconciliation.models import EhrLink

    EhrLink.objects.create(patient=ada, ehr_system="GENHOSP", external_id="MRN12345")
    return ada
