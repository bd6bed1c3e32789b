"""Demo data for prior authorization (called by ``seed_demo``): the demo payers with
illustrative criteria at different rollout stages, claim rejections arriving (reject 75 and
other codes), and a few cases worked through submission, approval, denial and questions so every
page shows something. The criteria are made up for the demo, not any plan's policy."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from pharmacy.actors import save_with_history, system_actor
from pharmacy.models import Coverage, Prescription

from . import services
from .models import PACase, Payer, PayerCriteria

DEMO_SOURCE = "Demo criteria (illustrative, not a real plan policy)"
CRITERIA = [
    # (payer BIN, PCN, class, benefit, mode, diagnosis prefixes, step drugs, min days, labs)
    (
        "610014",
        "MEDDPRIME",
        "glp1_agonist",
        "pharmacy",
        "assist",
        ["E11"],
        ["metformin"],
        90,
        [{"name": "HbA1c", "loinc_codes": ["4548-4"], "max_age_days": 180}],
    ),
    ("004336", "ADV", "sglt2_inhibitor", "pharmacy", "shadow", ["E11", "I50", "N18"], ["metformin"], 90, []),
    ("015581", "PARTD", "anticoagulant", "pharmacy", "auto", ["I48", "I26", "I82"], [], 0, []),
    ("610502", "AT", "dpp4_inhibitor", "pharmacy", "off", ["E11"], ["metformin"], 60, []),
    ("610014", "MEDDPRIME", "dmard", "medical", "assist", ["M05", "M06", "L40"], ["methotrexate"], 90, []),
]


def seed(ctx) -> None:
    actor = system_actor("system:demo-seed")
    payers = {}
    for name, bin_, pcn in {(c.payer_name, c.bin, c.pcn) for c in Coverage.objects.all()}:
        payers[(bin_, pcn)] = Payer.objects.filter(bin=bin_, pcn=pcn).first() or save_with_history(
            Payer(name=name, bin=bin_, pcn=pcn), actor=actor, reason="Demo data"
        )
    for bin_, pcn, cls, benefit, mode, dx, steps, days, labs in CRITERIA:
        payer = payers.get((bin_, pcn))
        if payer is None:
            continue
        row = PayerCriteria(
            payer=payer,
            therapeutic_class=cls,
            benefit=benefit,
            rollout_mode=mode,
            diagnosis_prefixes=dx,
            required_labs=labs,
            source=DEMO_SOURCE,
            step_therapy=[{"label": " or ".join(steps), "drugs": steps, "min_days": days}] if steps else [],
            max_quantity=Decimal("180") if cls != "dmard" else None,
            quantity_period_days=30 if cls != "dmard" else None,
        )
        row.full_clean()
        save_with_history(row, actor=actor, reason="Demo data")
    classes = [c[2] for c in CRITERIA]
    inbound = ctx.users.get("integrator") or system_actor("system:inbound")
    candidates = list(
        Prescription.objects.filter(
            status="active", drug__therapeutic_class__in=classes, patient__coverages__is_active=True
        )
        .select_related("drug", "patient")
        .distinct()
        .order_by("pk")[:12]
    )
    opened = 0
    for index, rx in enumerate(candidates):
        coverage = rx.patient.coverages.filter(is_active=True).order_by("priority").first()
        codes = ["75"] if index % 4 else ["75", "MR"]
        try:
            rejection, _ = services.claim_rejection_receive(
                actor=inbound,
                claim_reference=f"DEMO-CLM-{rx.pk}",
                patient=rx.patient,
                prescription=rx,
                drug=rx.drug,
                ndc=rx.drug.ndc or "00000000000",
                bin=coverage.bin,
                pcn=coverage.pcn,
                group=coverage.group,
                reject_codes=codes,
                rejected_at=timezone.now() - timedelta(hours=index * 5),
            )
            opened += rejection.case_id is not None
        except Exception as exc:  # a demo row the services refuse is fine; say so and go on
            ctx.stdout.write(f"  (demo claim for Rx {rx.pk} left out: {exc})\n")
    for rx in (
        Prescription.objects.filter(status="active")
        .exclude(pk__in=[c.pk for c in candidates])
        .order_by("pk")[:3]
    ):
        coverage = rx.patient.coverages.first()
        if coverage:
            services.claim_rejection_receive(
                actor=inbound,
                claim_reference=f"DEMO-CLM-{rx.pk}-79",
                patient=rx.patient,
                prescription=rx,
                drug=rx.drug,
                ndc=rx.drug.ndc or "00000000000",
                bin=coverage.bin,
                pcn=coverage.pcn,
                group=coverage.group,
                reject_codes=["79"],
                rejected_at=timezone.now(),
            )
    pharmacist = ctx.users.get("pharmacist")
    worked = 0
    if pharmacist is not None:
        ready = list(PACase.objects.filter(status="ready_for_review").exclude(letter="").order_by("pk")[:5])
        today = timezone.localdate()
        outcomes = [
            {
                "decision": "approved",
                "authorization_number": "DEMO-AUTH-1001",
                "effective_date": today.isoformat(),
                "expiration_date": (today + timedelta(days=20)).isoformat(),
            },
            {"decision": "denied", "reasons": ["Step therapy requirement not documented"]},
            {
                "decision": "pended",
                "questions": [{"id": "Q1", "text": "Which diagnosis (ICD-10-CM)?"}],
                "payer_case_id": "DEMO-PY-1",
            },
            {
                "decision": "approved",
                "authorization_number": "DEMO-AUTH-1002",
                "effective_date": today.isoformat(),
                "expiration_date": (today + timedelta(days=365)).isoformat(),
            },
        ]
        for case, outcome in zip(ready, outcomes + [None], strict=False):
            try:
                services.pa_case_submit(case_id=case.pk, actor=pharmacist)
                if outcome:
                    services.pa_response_receive(case_id=case.pk, data=outcome, raw=str(outcome))
                worked += 1
            except Exception as exc:  # noqa: BLE001
                ctx.stdout.write(f"  (demo case {case.pk} left as is: {exc})\n")
    ctx.stdout.write(
        f"Prior authorization: {len(payers)} payers, {PayerCriteria.objects.count()} criteria rows, "
        f"{opened} cases opened from reject 75, {worked} worked by the demo pharmacist.\n"
    )
