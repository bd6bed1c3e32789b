"""Model permissions the refills app adds to each role (merged by pharmacy.roles).
Admins edit protocol rules and their modes in Django admin; requests, links and intake and NCPDP
messages are read there only (decisions go through the queue's services)."""
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN

_WORKFLOW = ["refillrequest", "prescriberlink", "intakemessage", "inboundncpdpmessage", "newrxpatientmatch"]


def _perms(models, actions):
    return {f"refills.{a}_{m}" for m in models for a in actions}


ROLE_PERMISSIONS = {
    ADMIN: _perms(["protocolrule"], ("view", "add", "change")) | _perms(_WORKFLOW, ("view",)),
    PHARMACIST: _perms(["protocolrule", *_WORKFLOW], ("view",)),
    TECHNICIAN: _perms(["intakemessage", "newrxpatientmatch"], ("view",)),
}
