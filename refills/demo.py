"""Demo data for refills: the shipped protocol rules, one detection run, and a few requests
already worked so every queue state shows something (called by ``seed_demo``)."""
from __future__ import annotations

from pharmacy.actors import save_with_history, system_actor

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
