"""Demo data for reconciliation (called by ``seed_demo``): EHR links for some patients, discharges
over HL7 v2 with changed medication lists, a C-CDA discharge summary, a failed message, a message
waiting for a patient match, and one task already worked by the demo pharmacist."""
from __future__ import annotations

from pharmacy.actors import save_with_history, system_actor
from pharmacy.models import Prescription

from . import services
from .models import EhrLink, ReconciliationTask

SENDER, AUTHORITY = "EPIC", "RIVERSIDEHOSP"


def _a03(control_id: str, patient, lines: list[str], allergies: list[str]) -> str:
    born = patient.birth_date.strftime("%Y%m%d")
    segs = [f"MSH|^~\\&|{SENDER}|{AUTHORITY}|RXHUB|PHARM|20261130101500||ADT^A03^ADT_A03|{control_id}|P|2.5.1",
            "EVN|A03|20261130101500",
            f"PID|1||H{patient.pk:06d}^^^{AUTHORITY}^MR||{patient.last_name.upper()}^{patient.first_name.upper()}"
            f"||{born}|{patient.sex}",
            "PV1|1|I|4W^401^A"]
    segs += [f"AL1|{i}|DA|{a}|MO|Rash" for i, a in enumerate(allergies, 1)]
    segs += [
        f"OBX|{i}|TX|10183-2^Hospital discharge medications^LN|{i}|{line}||||||F" for i, line in enumerate(lines, 1)
    ]
    return "\r".join(segs) + "\r"


def seed(ctx) -> None:
    humans = [p for p in ctx.patients if not p.is_animal]
    by_patient: dict[int, list[Prescription]] = {}
    for rx in Prescription.objects.filter(patient__in=humans[:60], status="active").select_related("drug"):
        by_patient.setdefault(rx.patient_id, []).append(rx)
    chosen = [p for p in humans[:60] if len(by_patient.get(p.pk, [])) >= 2][:8]
    actor = system_actor("system:demo-seed")
    for patient in chosen:
        if not EhrLink.objects.filter(ehr_system=AUTHORITY, external_id=f"H{patient.pk:06d}").exists():
            save_with_history(EhrLink(ehr_system=AUTHORITY, external_id=f"H{patient.pk:06d}", patient=patient,
                                      consent_to_exchange=patient.pk % 2 == 0), actor=actor, reason="Demo data")
    extras = ["METFORMIN 500MG BID", "WARFARIN 5MG DAILY", "ATORVASTATIN 40MG QHS", "IBUPROFEN 400MG Q6H PRN",
              "LEVETIRACETAM 500MG BID", "OMEPRAZOLE 20MG DAILY"]
    opened = 0
    for index, patient in enumerate(chosen[:6]):
        rxs = by_patient[patient.pk]
        # The EHR keeps all but the last prescription, changes nothing else, and adds one new drug.
        lines = [f"{rx.drug.name.upper()} {rx.drug.strength.replace(' ', '').upper()} DAILY" for rx in rxs[:-1]]
        lines.append(extras[index % len(extras)])
        allergies = ["7980^Penicillin G^RXNORM"] if index % 3 == 0 else []
        result = services.ingest(channel="mllp", payload=_a03(f"DEMO-A03-{index}", patient, lines, allergies))
        opened += len(result.message.summary.get("tasks", [])) if isinstance(result.message.summary, dict) else 0
    # A message that fails (no trigger event) and one whose patient nobody knows.
    services.ingest(channel="mllp", payload="MSH|^~\\&|EPIC|RIVERSIDEHOSP|RXHUB|PHARM|20261130||||DEMO-BAD|P|2.5.1\r")
    services.ingest(channel="http_hl7", payload=(
        f"MSH|^~\\&|{SENDER}|{AUTHORITY}|RXHUB|PHARM|20261130||ADT^A03^ADT_A03|DEMO-NOMATCH|P|2.5.1\r"
        f"PID|1||UNKNOWN1^^^{AUTHORITY}^MR||NEWCOMB^TERESA||19710304|F\r"
        "OBX|1|TX|10183-2^Hospital discharge medications^LN|1|LISINOPRIL 10MG DAILY||||||F\r"))
    pharmacist = ctx.users.get("pharmacist")
    worked = ReconciliationTask.objects.filter(status="open").order_by("pk").first()
    if pharmacist is not None and worked is not None:
        for n, d in enumerate(worked.discrepancies.order_by("position")):
            try:
                if n % 2 == 0:
                    services.discrepancy_accept(discrepancy_id=d.pk, actor=pharmacist, note="Demo: confirmed")
                else:
                    services.discrepancy_reject(discrepancy_id=d.pk, actor=pharmacist, note="Demo: hospital-only")
            except Exception as exc:  # a demo row the rules refuse is fine; say so and go on
                ctx.stdout.write(f"  (demo discrepancy {d.pk} left as is: {exc})\n")
    ctx.stdout.write(f"Reconciliation: {len(chosen)} EHR links, {opened} tasks opened from discharges, "
                     f"1 failed message, 1 patient to match.\n")
