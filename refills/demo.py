"""Demo data for refills: the shipped protocol rules, one detection run, and a few requests
already worked so every queue state shows something (called by ``seed_demo``)."""
from __future__ import annotations

from pharmacy.actors import save_with_history, system_actor
from pharmacy.services import fill_record, prescription_create

from . import services
from .choices import ProtocolMode, RefillStatus
from .detection import detect_refills, evaluate_opened
from .models import ProtocolRule, RefillRequest


def seed(ctx) -> None:
    created, _ = services.protocol_rules_load_defaults(actor=system_actor("system:demo-seed"))
    # Two low-risk classes are a step further along the rollout, as a practice would do it.
    actor = system_actor("system:demo-seed")
    for prefix, mode in (("Statins", ProtocolMode.ASSIST), ("Levothyroxine", ProtocolMode.AUTO)):
        for rule in ProtocolRule.objects.filter(name__startswith=prefix):
            rule.mode = mode
            save_with_history(rule, actor=actor, reason=f"Demo: rule moved to {mode}", update_fields=["mode"])
    result = detect_refills(today=ctx.today)
    outcome = evaluate_opened(result.request_ids)
    ctx.stdout.write(f"Refills: {created} protocol rules; {result.opened} requests opened "
                     f"({', '.join(f'{n} {s}' for s, n in sorted(outcome.items())) or 'none'}).\n")
    pharmacist = ctx.users.get("pharmacist")
    if pharmacist is None:
        return
    # A handful worked by the demo pharmacist: approved, denied and forwarded ones.
    review = list(RefillRequest.objects.filter(status=RefillStatus.NEEDS_REVIEW).order_by("pk")[:9])
    for index, req in enumerate(review[:6]):
        try:
            if index < 3:
                services.refill_request_approve(request_id=req.pk, actor=pharmacist, note="Demo approval")
            elif index < 5:
                services.refill_request_deny(request_id=req.pk, actor=pharmacist,
                                             reason="Patient needs an office visit first", reason_code="AF")
            else:
                services.refill_request_forward(request_id=req.pk, actor=pharmacist, note="Please review")
        except Exception as exc:  # a demo row the rules refuse is fine; say so and go on
            ctx.stdout.write(f"  (demo request {req.pk} left as is: {exc})\n")
    seed_authority(ctx, pharmacist)
    seed_more(ctx)


def seed_authority(ctx, pharmacist) -> None:
    """Issue 13 examples: a Schedule II renewal (only Forward/Deny here; the prescriber sends a new
    prescription from their EPCS system), a Schedule IV refill within its limits (releasable), and a
    collaborative practice agreement (the demo prescriber + statins, the demo pharmacist) with a
    statin renewal it covers. Nothing here is decided: the queue shows what each person may do."""
    from datetime import timedelta
    from decimal import Decimal

    from pharmacy.models import CollaborativePracticeAgreement, Drug, Fill, Prescription

    actor = system_actor("system:demo-seed")
    prescriber = next((p for p in ctx.prescribers if p.user_id and p.dea_number), None)
    patients = [p for p in ctx.patients if p.preferred_pharmacy_id][:4]
    if prescriber is None or len(patients) < 4:
        return
    today = ctx.today
    examples = (
        ("2", patients[0], 0, 0, 25, "pharmacy", "Schedule II renewal (new prescription from the prescriber's EPCS)"),
        ("4", patients[1], 3, 2, 60, "patient", "Schedule IV refill within 5 refills and 6 months"),
        ("statin", patients[2], 5, 0, 200, "pharmacy", "Statin renewal covered by the demo agreement"),
        # DUR (issue 13 item 6): simvastatin with diltiazem is ONC high-priority pair 11 (Phansalkar
        # 2012, pharmacy/data/onc_high_priority_ddi.json): the request page and the link show it and
        # the statin protocol (assist) refers it to a person.
        ("interaction", patients[3], 5, 3, 120, "patient", "Simvastatin refill with diltiazem also active"),
    )
    for key, patient, authorized, remaining, written_ago, source, why in examples:
        drugs = Drug.objects.filter(species="human", is_active=True)
        if key == "interaction":
            drug = drugs.filter(name="simvastatin").order_by("strength").first()
            other = drugs.filter(name="diltiazem").order_by("strength").first()
            if drug is None or other is None:
                continue
            also = Prescription(patient=patient, prescriber=prescriber, drug=other, quantity=Decimal("30"),
                                sig="Take 1 capsule by mouth once daily", days_supply=30, refills_authorized=5,
                                refills_remaining=4, written_date=today - timedelta(days=90),
                                pharmacy_id=patient.preferred_pharmacy_id, rx_number="DEMO-DUR-DILTIAZEM")
            also.full_clean()
            prescription_create(prescription=also, actor=actor, reason=f"Demo data: {why}")
        else:
            drug = (drugs.filter(therapeutic_class="statin", dea_schedule="none") if key == "statin"
                    else drugs.filter(dea_schedule=key)).order_by("name").first()
        if drug is None:
            continue
        rx = Prescription(patient=patient, prescriber=prescriber, drug=drug, sig="Take 1 tablet by mouth once daily",
                          quantity=Decimal("30"), days_supply=30, refills_authorized=authorized,
                          refills_remaining=remaining, written_date=today - timedelta(days=written_ago),
                          pharmacy_id=patient.preferred_pharmacy_id, rx_number=f"DEMO-AUTH-{key.upper()}")
        rx.full_clean()
        prescription_create(prescription=rx, actor=actor, reason=f"Demo data: {why}")
        for days_ago in ((58, 28) if written_ago >= 58 else (written_ago,)):
            fill = Fill(prescription=rx, fill_date=today - timedelta(days=days_ago), quantity=Decimal("30"),
                        days_supply=30, pharmacy_id=patient.preferred_pharmacy_id)
            fill_record(fill=fill, actor=actor, reason=f"Demo data: {why}")
        if key == "statin":
            agreement = CollaborativePracticeAgreement(
                title="Statin renewals (demo)", prescriber=prescriber, drug_classes=["statin"], max_days_supply=365,
                effective_date=today - timedelta(days=90), document_reference="DEMO-CPA-001 (signed 2026, demo)",
                notes="Demo: the demo pharmacist may renew statins for this prescriber's patients.")
            agreement.full_clean()
            save_with_history(agreement, actor=actor, reason="Demo data: collaborative practice agreement")
            agreement.pharmacists.add(pharmacist)
        try:
            services.refill_request_open(prescription=rx, actor=actor, source=source, reason=f"Demo: {why}",
                                         pharmacy_message_id=f"DEMO-{key.upper()}-1" if source == "pharmacy" else "",
                                         kind="renewal" if remaining == 0 else None)
        except Exception as exc:  # noqa: BLE001 — a demo row the rules refuse is said, not hidden
            ctx.stdout.write(f"  (demo {why} not opened: {exc})\n")


def seed_more(ctx) -> None:
    """Demo rows for the newcomer's tour (issue 11 item 11): patient messages waiting in triage, a
    dead outbound message on the outbox page; protocol-suggested refills for bulk approval come from
    the detection run above (the shipped rules in shadow/assist; Levothyroxine in auto)."""
    from django.conf import settings

    from pharmacy.messaging.outbox import outbox_deliver, outbox_enqueue

    from .choices import IntakeStatus
    from .intake import intake_receive
    from .models import IntakeMessage

    actor = system_actor("system:demo-seed")
    for channel, sender, text in (
        ("sms", "+1 617 555 0199", "Hi this is Maria, can I get my blood pressure pills refilled please?"),
        ("email", "owner.unknown@example.com", "Our dog needs more of his heart medicine, thanks."),
        ("portal", "portal:unverified-7731", "Please refill my medication."),
    ):
        intake_receive(channel=channel, sender=sender, text=text, actor=actor)
    waiting = IntakeMessage.objects.filter(status=IntakeStatus.TRIAGE).count()
    # A pharmacy endpoint that never answers: after the configured attempts the message is dead and
    # waits for a person's Retry on /outbox/ (port 9 on this machine refuses at once).
    message = outbox_enqueue(kind="ncpdp:Status", payload="<Message><!-- demo: undeliverable --></Message>",
                             transport="http", destination="http://127.0.0.1:9/demo-pharmacy-offline",
                             actor=actor, reason="Demo: a pharmacy endpoint that is offline", deliver_now=False)
    for _ in range(int(settings.RXHUB.get("OUTBOX_MAX_ATTEMPTS", 8))):
        if outbox_deliver(outbox_id=message.pk).status == "dead":
            break
    suggested = RefillRequest.objects.filter(status=RefillStatus.NEEDS_REVIEW, kind="refill",
                                             protocol_suggestion="approve").count()
    ctx.stdout.write(f"  Tour: {waiting} patient messages in triage, 1 dead outbound message, "
                     f"{suggested} protocol-suggested refills to bulk approve.\n")
