"""Model permissions of the audit app per role (merged by pharmacy.roles.all_role_permissions).
Admins read the audit trail and the PHI access log in the admin; nobody may change them."""
from pharmacy.roles import ADMIN

ROLE_PERMISSIONS = {
    ADMIN: {"audit.view_auditevent", "audit.view_phiaccess"},
}
