"""What every refill-request write module shares: the lock, the checked move (the core workflow
helper with this app's transition table), the system actors, who may decide, and the patient
notifications written through the outbox in the decision's transaction."""
from __future__ import annotations

from pharmacy import workflow
from pharmacy.actors import Actor, SystemActor, actor_user, system_actor
from pharmacy.errors import DomainError
from pharmacy.roles import ADMIN, PHARMACIST, PRESCRIBER, has_role, require_role

from .. import notifications
from ..choices import RefillStatus, can_transition
from ..models import RefillRequest

S = RefillStatus
PROTOCOL = system_actor("system:refill-protocol")
INTAKE = system_actor("system:patient-intake")


def _locked(request_id: int) -> RefillRequest:
    return workflow.locked(RefillRequest, request_id, label="refill request")


def refill_request_move(req: RefillRequest, target: str, *, actor: Actor, reason: str,
                        fields: tuple[str, ...] = ()) -> None:
    """Move a locked request to ``target`` (checked against refills/choices.TRANSITIONS, saved with
    the actor and the reason): the core workflow helper with this app's table, for every refill
    write module (links, new prescriptions, inbound)."""
    workflow.move(req, target, transitions=can_transition, label="refill request", actor=actor, reason=reason,
                  fields=fields)


_move = refill_request_move


def PROTOCOL_USER():  # noqa: N802 — the user row behind the protocol's system actor
    return actor_user(PROTOCOL)


def _check_not_claimed_by_other(req: RefillRequest, actor) -> None:
    if isinstance(actor, SystemActor) or not req.claimed_by_id:
        return
    if req.claimed_by_id != actor.pk:
        raise DomainError(f"{req.claimed_by.username} is working on this request; ask them or release it first.",
                          code="claimed_by_other")


def _may_decide(req: RefillRequest, actor, verb: str) -> None:
    """Clinical decisions: pharmacists/admins; prescribers (or their link) only when awaiting them.
    A technician never records a clinical approval."""
    if isinstance(actor, SystemActor):
        return
    if req.status == S.AWAITING_PRESCRIBER and has_role(actor, PRESCRIBER):
        return
    require_role(actor, PHARMACIST, ADMIN, action=f"{verb} a refill request")


def _notify(req: RefillRequest, event: str) -> None:
    """Patient messages (refills.notifications): an outbox row written in the decision's
    transaction (inside a savepoint), so a crash after the commit cannot lose it; a message that
    cannot be queued never blocks the decision."""
    if event == "decision" and hasattr(notifications, "notify_refill_decision"):
        notifications.notify_refill_decision(req)
    elif event == "ready" and hasattr(notifications, "notify_ready_for_pickup"):
        notifications.notify_ready_for_pickup(req)
