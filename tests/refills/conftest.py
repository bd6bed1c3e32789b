from datetime import timedelta

import pytest
from django.utils import timezone

from refills.models import ProtocolRule, RefillRequest
from tests.factories import CoverageFactory, FillFactory, LabResultFactory, PrescriptionFactory


@pytest.fixture
def due_prescription(db):
    """An active lisinopril prescription on therapy for ~10 months whose 30-day fill runs out in
    3 days, with labs, a recent visit and coverage on file — the protocol's happy path."""
    today = timezone.localdate()
    rx = PrescriptionFactory(refills_authorized=11, refills_remaining=3, written_date=today - timedelta(days=300))
    for days_ago in (300, 240, 180, 120, 57, 27):
        FillFactory(prescription=rx, fill_date=today - timedelta(days=days_ago))
    CoverageFactory(patient=rx.patient)
    LabResultFactory(patient=rx.patient, loinc_code="2823-3", name="Potassium")
    LabResultFactory(patient=rx.patient, loinc_code="2160-0", name="Creatinine", value="1.0", unit="mg/dL")
    return rx


@pytest.fixture
def ace_rule(db):
    def make(mode="shadow"):
        return ProtocolRule.objects.create(
            name=f"ACE inhibitors ({mode})", mode=mode, therapeutic_classes=["ace_inhibitor"],
            required_labs=[{"name": "Potassium", "loinc_codes": ["2823-3"], "max_age_months": 12},
                           {"name": "Creatinine", "loinc_codes": ["2160-0"], "max_age_months": 12}],
            source="CMS SOM Appendix PP F757")
    return make


@pytest.fixture
def make_request(db):
    def make(status="needs_review", **kwargs):
        rx = kwargs.pop("prescription", None) or PrescriptionFactory(refills_authorized=5, refills_remaining=3)
        return RefillRequest.objects.create(prescription=rx, patient=rx.patient, status=status,
                                            pharmacy=rx.pharmacy, prescriber=rx.prescriber, **kwargs)
    return make
