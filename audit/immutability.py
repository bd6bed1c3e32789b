"""History and audit rows are append-only (HIPAA 45 CFR 164.312(b) audit controls;
164.312(c)(1) integrity: protect ePHI and its records from improper alteration or destruction).

Two layers:

* In the application: ``pre_save``/``pre_delete`` guards on every historical model and on the
  audit tables refuse to change or delete an existing row through the ORM or the admin (the
  admin classes are read-only as well).
* On PostgreSQL: a row trigger (``rxhub_append_only``) refuses UPDATE and DELETE on every
  ``*historical*`` table and on the audit tables, whatever issued the statement. The audit
  migration installs it for the tables that exist then; a ``post_migrate`` handler re-installs it
  (idempotently) after every ``migrate`` so history tables created by later migrations of other
  apps are covered too.

The one exception is the explicit retention purge (``manage.py purge_history``, itself an audit
event), and only for history and PHI access rows — never the audit chain or its head. The trigger
lets a DELETE through only when **both** the transaction set ``rxhub.retention_purge = on`` **and**
the session's role owns the table (is a member of its owner role). The application's role owns
nothing in production (README, "Production"), so no session setting it can issue unlocks a delete:
the purge runs as the owner role, the one that runs migrations — which could drop the trigger
anyway, and whose edits the keyed chain and the anchor file detect. TRUNCATE is not a row operation
and is not blocked (the test runner flushes with it); the application role is not granted it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connections

TRIGGER = "rxhub_append_only"
FUNCTION = "rxhub_refuse_change"
PURGE_SETTING = "rxhub.retention_purge"
AUDIT_TABLES = ("audit_auditevent", "audit_auditchainhead", "audit_phiaccess")
# Never purgeable, whoever asks: removing the chain's first links would make the rest unverifiable.
CHAIN_TABLES = ("audit_auditevent", "audit_auditchainhead")
HISTORY_TABLE = re.compile(r"^[a-z0-9_]+_historical[a-z0-9_]+$")

_CHAIN_LIST = ", ".join(f"'{table}'" for table in CHAIN_TABLES)
FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME NOT IN ({_CHAIN_LIST})
     AND coalesce(current_setting('{PURGE_SETTING}', true), '') = 'on'
     AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'rxhub: % on % refused: history and audit rows are append-only (45 CFR 164.312(b))',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
"""

_purging: ContextVar[bool] = ContextVar("rxhub_retention_purge", default=False)


class ImmutableRecordError(Exception):
    """An attempt to change or delete a history or audit row through the application."""


def protected_tables(connection) -> list[str]:
    """Every history table (simple-history names them ``<app>_historical<model>``) and the audit
    tables that exist in this database."""
    from django.apps import apps

    existing = set(connection.introspection.table_names())
    wanted = {name for name in existing if HISTORY_TABLE.match(name)}
    wanted.update(table for table in AUDIT_TABLES if table in existing)
    for model in protected_models(apps):
        if model._meta.db_table in existing:
            wanted.add(model._meta.db_table)
    return sorted(wanted)


def protected_models(apps) -> list:
    from simple_history.models import HistoricalChanges

    models = []
    for model in apps.get_models():
        if (
            isinstance(model, type) and issubclass(model, HistoricalChanges)
        ) or model._meta.db_table in AUDIT_TABLES:
            models.append(model)
    return models


def install_triggers(connection, tables: list[str] | None = None) -> list[str]:
    """(Re)install the append-only trigger on PostgreSQL; a no-op elsewhere. Idempotent."""
    if connection.vendor != "postgresql":
        return []
    tables = protected_tables(connection) if tables is None else tables
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        for table in tables:
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {quote(table)}")
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {quote(table)} "
                f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
            )
    return tables


def tables_with_trigger(connection) -> set[str]:
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND NOT t.tgisinternal",
            [TRIGGER],
        )
        return {row[0] for row in cursor.fetchall()}


def install_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate: cover history tables that later migrations (any app) created. Only tables
    still without the trigger are touched (a flush between tests leaves triggers in place), so
    the usual cost is one catalog query. A changed function body needs a new audit migration."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    missing = sorted(set(protected_tables(connection)) - tables_with_trigger(connection))
    if missing:
        install_triggers(connection, missing)


def may_purge(connection) -> bool:
    """Whether this session's role owns the protected tables (PostgreSQL); always true elsewhere."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class "
                       "WHERE relname = 'audit_phiaccess' AND relkind = 'r'")
        row = cursor.fetchone()
    return bool(row and row[0])


@contextmanager
def retention_purge(using: str = "default"):
    """Allow DELETE on history/audit rows for the rest of the current transaction (purge only)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("retention_purge() must run inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [PURGE_SETTING])
    token = _purging.set(True)
    try:
        yield
    finally:
        _purging.reset(token)
        if connection.vendor == "postgresql" and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'off', true)", [PURGE_SETTING])


def refuse_update(sender, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    if not instance._state.adding:
        raise ImmutableRecordError(f"{sender._meta.label} rows are append-only; this one cannot be changed.")


def refuse_delete(sender, instance, **kwargs) -> None:
    if not _purging.get():
        raise ImmutableRecordError(
            f"{sender._meta.label} rows are append-only; only purge_history removes them."
        )


def connect_guards() -> None:
    from django.apps import apps
    from django.db.models.signals import pre_delete, pre_save

    for model in protected_models(apps):
        pre_save.connect(
            refuse_update, sender=model, dispatch_uid=f"rxhub-immutable-save-{model._meta.label}"
        )
        pre_delete.connect(
            refuse_delete, sender=model, dispatch_uid=f"rxhub-immutable-delete-{model._meta.label}"
        )
