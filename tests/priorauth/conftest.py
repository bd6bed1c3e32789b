"""A PA world: a GLP-1 prescription for a patient with type 2 diabetes, 120 days of metformin
fills (step therapy), a recent HbA1c, coverage with Blue Harbor (BIN 610014 / PCN MEDDPRIME), and
that payer's criteria for the class."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from pharmacy.models import Diagnosis
from priorauth.models import Payer, PayerCriteria
from tests.factories import CoverageFactory, DrugFactory, FillFactory, LabResultFactory, PrescriptionFactory

NDC = "00169413013"


@pytest.fixture
def payer(db):
    return Payer.objects.create(name="Blue Harbor Health", bin="610014", pcn="MEDDPRIME")


@pytest.fixture
def make_criteria(payer):
    def make(**overrides):
        values = dict(
            payer=payer,
            therapeutic_class="glp1_agonist",
            benefit="pharmacy",
            diagnosis_prefixes=["E11"],
            step_therapy=[{"label": "metformin", "drugs": ["metformin"], "min_days": 90}],
            max_quantity=Decimal("4"),
            quantity_period_days=28,
            required_labs=[{"name": "HbA1c", "loinc_codes": ["4548-4"], "max_age_days": 90}],
            rollout_mode="assist",
            source="Blue Harbor GLP-1 policy (test)",
        )
        values.update(overrides)
        row = PayerCriteria(**values)
        row.full_clean()
        row.save()
        return row

    return make


@pytest.fixture
def pa_rx(db):
    today = timezone.localdate()
    drug = DrugFactory(
        name="semaglutide",
        strength="1 mg/0.75 mL",
        dose_form="pen injector",
        route="subcutaneous",
        therapeutic_class="glp1_agonist",
        ndc=NDC,
    )
    rx = PrescriptionFactory(
        drug=drug,
        quantity=Decimal("3"),
        days_supply=28,
        rx_number="RX7001",
        sig="Inject 1 mg under the skin weekly",
        indication_code="E11.9",
    )
    metformin = DrugFactory(name="metformin", strength="500 mg", therapeutic_class="biguanide")
    old = PrescriptionFactory(
        patient=rx.patient, drug=metformin, prescriber=rx.prescriber, written_date=today - timedelta(days=200)
    )
    for days_ago in (180, 150, 120, 90):
        FillFactory(prescription=old, fill_date=today - timedelta(days=days_ago), days_supply=30)
    Diagnosis.objects.create(
        patient=rx.patient,
        code="E11.9",
        description="Type 2 diabetes mellitus without complications",
        source="ehr",
    )
    LabResultFactory(
        patient=rx.patient,
        loinc_code="4548-4",
        name="Hemoglobin A1c",
        value="8.4",
        unit="%",
        abnormal_flag="H",
        collected_at=timezone.now() - timedelta(days=20),
        source="ehr",
    )
    CoverageFactory(patient=rx.patient, bin="610014", pcn="MEDDPRIME", group="G1234")
    return rx
