"""Model permissions the reconciliation app adds to each role (merged by pharmacy.roles)."""
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, TECHNICIAN

_MODELS = ["inboundmessage", "ehrlink", "patientmatchitem", "reconciliationtask", "discrepancy"]


def _perms(models, actions):
    return {f"reconciliation.{a}_{m}" for m in models for a in actions}


ROLE_PERMISSIONS = {
    PHARMACIST: _perms(_MODELS, ("view",)) | _perms(["ehrlink", "patientmatchitem"], ("change",)),
    TECHNICIAN: _perms(_MODELS, ("view",)) | _perms(["patientmatchitem"], ("change",)),
    ADMIN: _perms(_MODELS, ("view", "change")),
    INTEGRATOR: _perms(["inboundmessage"], ("view",)),
}
