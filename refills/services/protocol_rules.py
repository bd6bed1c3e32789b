"""The refill protocol's rule rows (loading the shipped defaults) and the checks that may turn a
protocol verdict "approve" into a referral (authority, therapeutic duplication, interactions)."""
from __future__ import annotations

import dataclasses
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import record_event
from pharmacy.actors import Actor, SystemActor, save_with_history
from pharmacy.models import Prescription
from pharmacy.roles import ADMIN, require_role
from pharmacy.selectors import drug_interactions, therapeutic_duplicates

from .. import authority
from ..models import ProtocolRule, RefillRequest
from ..protocol import Check
from ..protocol_defaults import default_rule_rows
from ._common import PROTOCOL


def _with_authority(decision, *, req: RefillRequest, rx: Prescription, rule_row, today: date):
    """A protocol verdict "approve" holds only when the rule may authorize this request
    (pharmacy/rules/authority.py: a renewal only under the agreement the rule names, never
    Schedule II–V) and within the limits; otherwise the request goes to a person, with the reason
    in the trace."""

    if decision.outcome != "approve":
        return decision
    answer = authority.authority_for(req, rx, PROTOCOL, agreement_id=rule_row.agreement_id if rule_row else None,
                                     today=today)
    detail = f"{answer.message} ({answer.citation})"
    if answer.allowed:
        try:
            authority.limits_check(req, rx, authority.change_of(), today=today, renewal=answer.kind == "renewal")
        except ValidationError as exc:
            answer, detail = None, "; ".join(exc.messages)
    if answer is not None and answer.allowed:
        return dataclasses.replace(decision, trace=(*decision.trace, Check("authorized", True, detail)))
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber",
                               trace=(*decision.trace, Check("authorized", False, detail)))


def _with_duplication(decision, *, rx: Prescription):
    """Drug utilization review, therapeutic duplication (docs/standards.md: two active prescriptions
    in the same class): a protocol never approves over one; a person looks."""

    if decision.outcome != "approve" or not rx.drug.therapeutic_class:
        return decision
    others = therapeutic_duplicates(rx, limit=3)
    if not others:
        return dataclasses.replace(decision, trace=(*decision.trace, Check(
            "no_therapeutic_duplication", True, "no other active prescription in the same class")))
    names = ", ".join(str(o.drug) for o in others)
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber", trace=(
        *decision.trace, Check("no_therapeutic_duplication", False,
                               f"therapeutic duplication: also active in {rx.drug.therapeutic_class}: {names}")))


def _with_interactions(decision, *, rx: Prescription):
    """Drug utilization review, the ONC high-priority drug–drug interactions (Phansalkar et al.,
    JAMIA 2012; pharmacy/rules/interactions.py): a protocol never approves over one; a person looks."""

    if decision.outcome != "approve":
        return decision
    found = drug_interactions(rx)
    if not found:
        return dataclasses.replace(decision, trace=(*decision.trace, Check(
            "no_high_priority_interaction", True, "no ONC high-priority interaction with another active drug")))
    return dataclasses.replace(decision, outcome="refer", suggested_action="refer_to_prescriber", trace=(
        *decision.trace, Check("no_high_priority_interaction", False, "; ".join(f.message for f in found))))


def _protocol_agreement(req: RefillRequest, rx: Prescription, rule_row, today: date) -> int | None:
    answer = authority.authority_for(req, rx, PROTOCOL, agreement_id=rule_row.agreement_id if rule_row else None,
                                     today=today)
    return answer.agreement.id if answer.agreement else None


# --- protocol rules ---------------------------------------------------------------------------

@transaction.atomic
def protocol_rules_load_defaults(*, actor: Actor, replace: bool = False) -> tuple[int, int]:
    """Load the shipped rule set (refills/protocol_defaults.py, with its sources) into ProtocolRule
    rows. Existing rules keep the practice's edits unless ``replace``; a replaced rule keeps its
    mode, so loading never switches a rule to ``auto`` behind anyone's back. Returns (created, updated)."""
    if not isinstance(actor, SystemActor):
        require_role(actor, ADMIN, action="load the default refill protocol rules")
    existing = {rule.name: rule for rule in ProtocolRule.objects.select_for_update()}
    created = updated = 0
    for order, row in enumerate(default_rule_rows()):
        fields = {k: v for k, v in row.items() if k in _PROTOCOL_RULE_FIELDS and k != "name"}
        fields.setdefault("priority", (order + 1) * 10)
        rule = existing.get(row["name"])
        if rule is None:
            rule = ProtocolRule(name=row["name"], **fields)
            rule.full_clean()
            save_with_history(rule, actor=actor, reason="Default refill protocol rule loaded")
            created += 1
        elif replace:
            fields.pop("mode", None)
            for key, value in fields.items():
                setattr(rule, key, value)
            rule.full_clean()
            save_with_history(rule, actor=actor, reason="Default refill protocol rule reloaded (mode kept)")
            updated += 1
    if created or updated:
        record_event(
            kind="settings.protocol_rules_loaded",
            actor=actor,
            summary=f"{created} created, {updated} updated",
            data={"created": created, "updated": updated, "replace": replace},
        )
    return created, updated


def _protocol_rule_fields() -> frozenset[str]:
    return frozenset(f.name for f in ProtocolRule._meta.concrete_fields if f.name != "id")


_PROTOCOL_RULE_FIELDS = _protocol_rule_fields()
