"""PA permissions per role (merged into pharmacy.roles by all_role_permissions).
A technician prepares cases; only a pharmacist approves a submission (``submit_pacase``)."""

from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, PRESCRIBER, TECHNICIAN

MODELS = [
    "payer",
    "payercriteria",
    "claimrejection",
    "pacase",
    "pasubmission",
    "paresponse",
    "paattachment",
    "prescriptionauthorization",
]


def _perms(models, actions):
    return {f"priorauth.{a}_{m}" for m in models for a in actions}


ROLE_PERMISSIONS = {
    PHARMACIST: _perms(MODELS, ("view",))
    | _perms(["pacase", "paattachment"], ("change", "add"))
    | {"priorauth.submit_pacase"},
    TECHNICIAN: _perms(MODELS, ("view",)) | _perms(["pacase", "paattachment"], ("change", "add")),
    ADMIN: _perms(MODELS, ("view", "add", "change", "delete")) | {"priorauth.submit_pacase"},
    INTEGRATOR: _perms(["claimrejection", "pacase", "paresponse", "prescriptionauthorization"], ("view",)),
    PRESCRIBER: _perms(["pacase"], ("view",)),
}
