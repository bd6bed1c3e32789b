"""`check --deploy`: the application's database role must not be able to rewrite the audit trail.

The role the application connects as should be neither a superuser nor the owner (or a member of
the owner role) of the history and audit tables: an owner can switch the append-only trigger off
and unlock the retention purge (audit/immutability.py; 45 CFR 164.312(b), 164.312(c)(1))."""
from __future__ import annotations

from django.core.checks import Warning, register
from django.db import DatabaseError, connection


@register("audit", deploy=True)
def check_application_db_role(app_configs=None, **kwargs):
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            user, superuser = cursor.fetchone()
            cursor.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND "
                "(c.relname LIKE '%%\\_historical%%' OR c.relname LIKE 'audit\\_%%') "
                "AND pg_has_role(current_user, c.relowner, 'MEMBER') ORDER BY 1 LIMIT 3")
            owned = [row[0] for row in cursor.fetchall()]
    except DatabaseError as exc:
        return [Warning(f"Could not check the application's database role: {exc}", id="audit.W003")]
    warnings = []
    if superuser:
        warnings.append(Warning(
            f"The application connects to PostgreSQL as {user!r}, a superuser: it can disable the append-only "
            "triggers and rewrite history and audit rows.",
            hint="Connect as an application role with only DML rights (README, Production: two roles).",
            id="audit.W001"))
    elif owned:
        warnings.append(Warning(
            f"The application's database role {user!r} owns (or is a member of the owner of) the history and "
            f"audit tables ({', '.join(owned)}, …): it can switch the append-only trigger off and purge.",
            hint="Run migrations as an owner role and the application as another role "
                 "(`manage.py grant_app_role ROLE`; README, Production).",
            id="audit.W002"))
    return warnings
