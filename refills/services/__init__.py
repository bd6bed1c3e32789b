"""Every state change of a refill or renewal request (DESIGN.md: RefillRequest).

Each service: keyword-only, one transaction, the row locked, the transition checked against
refills/choices.TRANSITIONS, history written with the actor and a reason, security-relevant
decisions recorded in the audit chain, and outbound NCPDP messages written to the outbox in the
same transaction.

The package (one module per concern; every name stays importable from ``refills.services``):
``requests`` (open, evaluate, triage, claim), ``decisions`` (approve, deny, forward, cancel, the
authorization), ``fills`` (delivered, fill reported, picked up, pharmacy change),
``protocol_rules`` (default rule rows, the checks that may refer a protocol approval) and
``_common`` (lock, checked move, system actors, notifications).
"""
from ._common import INTAKE, PROTOCOL, PROTOCOL_USER, S, _locked, _move, _notify, refill_request_move
from .decisions import (
    describe_changes,
    refill_request_approve,
    refill_request_cancel,
    refill_request_deny,
    refill_request_forward,
    register_prescriber_sender,
)
from .fills import (
    FILL_OUTCOMES,
    on_authorization_delivered,
    prescription_change_pharmacy,
    refill_request_mark_picked_up,
    refill_request_record_fill,
)
from .protocol_rules import protocol_rules_load_defaults
from .requests import (
    _store_triage,
    refill_request_claim,
    refill_request_evaluate,
    refill_request_open,
    refill_request_store_triage,
    refill_request_unclaim,
)

__all__ = [
    "FILL_OUTCOMES", "INTAKE", "PROTOCOL", "PROTOCOL_USER", "S", "_locked", "_move", "_notify", "_store_triage",
    "describe_changes", "on_authorization_delivered", "prescription_change_pharmacy", "protocol_rules_load_defaults",
    "refill_request_approve", "refill_request_cancel", "refill_request_claim", "refill_request_deny",
    "refill_request_evaluate", "refill_request_forward", "refill_request_mark_picked_up", "refill_request_move",
    "refill_request_open", "refill_request_record_fill", "refill_request_store_triage", "refill_request_unclaim",
    "register_prescriber_sender",
]
