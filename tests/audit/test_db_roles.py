"""Two database roles (issue 14 item 4): the suite runs as the owner (it creates test databases and
runs migrations); this test creates an application role the way README "Production" does
(`grant_app_role`), connects as it over TCP and proves it can neither UPDATE/DELETE history or audit
rows nor unlock them — not even after someone grants it UPDATE and DELETE by mistake."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from audit.events import record_event
from audit.models import PhiAccess
from pharmacy.actors import system_actor
from tests.factories import PatientFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles are PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]
PROTECTED = ["pharmacy_historicalpatient", "audit_auditevent", "audit_auditchainhead", "audit_phiaccess"]


@pytest.fixture
def app_role():
    """A LOGIN role with the application's grants; dropped afterwards (roles are cluster-wide)."""
    import psycopg

    name, password = f"rxhub_app_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {q(name)} LOGIN PASSWORD %s", [password])
    call_command("grant_app_role", name, stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings = connection.settings_dict
    conninfo = dict(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432, dbname=settings["NAME"],
                    user=name, password=password)
    opened = []

    def connect():
        conn = psycopg.connect(**conninfo, autocommit=True)
        opened.append(conn)
        return conn

    connect.name, connect.conninfo = name, conninfo
    yield connect
    for conn in opened:
        conn.close()
    with connection.cursor() as cursor:
        for what in ("ALL TABLES IN SCHEMA public", "ALL SEQUENCES IN SCHEMA public", "SCHEMA public",
                     f"DATABASE {q(settings['NAME'])}"):
            cursor.execute(f"REVOKE ALL ON {what} FROM {q(name)}")
        cursor.execute(f"DROP ROLE {q(name)}")


@pytest.fixture
def rows(db):
    actor = system_actor("system:maintenance")
    patient = PatientFactory()
    for i in range(3):
        record_event(kind="test.event", actor=actor, patient_id=patient.pk, data={"i": i})
    PhiAccess.objects.create(at=patient.created_at, username="x", patient_id=patient.pk, what="t", path="/",
                             method="GET")
    return patient


def _refused(conn, sql, match):
    import psycopg

    with pytest.raises(psycopg.Error) as caught, conn.transaction():
        conn.execute(sql)
    assert match in str(caught.value), str(caught.value)


APP_SIDE = """
import json, django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
django.setup()
from datetime import date
from audit.checks import check_application_db_role
from audit.services import history_purge
from audit.verify import verify_chain
from pharmacy.actors import system_actor
from pharmacy.errors import DomainError
try:
    history_purge(before=date(2000, 1, 1), actor=system_actor("system:maintenance"))
    purge = "purged"
except DomainError as exc:
    purge = exc.code
print(json.dumps({"warnings": [w.id for w in check_application_db_role()], "purge": purge,
                  "verified": verify_chain().ok}))
"""


def _as_app(conninfo) -> dict:
    import json

    c = conninfo
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update({"DATABASE_URL": f"postgres://{c['user']}:{c['password']}@{c['host']}:{c['port']}/{c['dbname']}",
                "DJANGO_HTTPS": "0"})
    out = subprocess.run([sys.executable, "-c", APP_SIDE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_app_role_can_work_but_never_rewrite_or_unlock_history_and_audit_rows(app_role, rows):
    """One test (one committed setup, one flush): the rows must be committed for the role to see them."""
    conn = app_role()
    # An ordinary application role: reads, writes ordinary rows, inserts into the append-only tables.
    assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 3
    conn.execute("INSERT INTO audit_phiaccess (at, username, patient_id, what, path, method) "
                 "VALUES (now(), 'app', %s, 'x', '/', 'GET')", [rows.pk])
    conn.execute("UPDATE pharmacy_patient SET city = 'Springfield' WHERE id = %s", [rows.pk])
    # With the README's grants: no UPDATE, DELETE, TRUNCATE, no trigger switch, no replication role.
    for table in PROTECTED:
        _refused(conn, f"UPDATE {table} SET id = id", "permission denied")
        _refused(conn, f"DELETE FROM {table}", "permission denied")
        _refused(conn, f"TRUNCATE {table}", "permission denied")
        _refused(conn, f"ALTER TABLE {table} DISABLE TRIGGER rxhub_append_only", "must be owner")
    _refused(conn, "SET session_replication_role = replica", "permission denied")

    # A careless deployment grants UPDATE and DELETE too: the trigger still refuses, and the purge
    # setting does not unlock a delete for a role that does not own the table.
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT UPDATE, DELETE ON {', '.join(PROTECTED)} TO {q(app_role.name)}")
    for table in PROTECTED:
        _refused(conn, f"UPDATE {table} SET id = id", "append-only")
        _refused(conn, f"DELETE FROM {table}", "append-only")
        with pytest.raises(psycopg_error(), match="append-only"), conn.transaction():
            conn.execute("SELECT set_config('rxhub.retention_purge', 'on', true)")
            conn.execute(f"DELETE FROM {table}")
    assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM pharmacy_historicalpatient").fetchone()[0] >= 1

    # The application itself, connected as that role: check --deploy is quiet about it, the chain
    # verifies, and purge_history refuses (it is the owner's job); as the suite's role it warns.
    app_side = _as_app(app_role.conninfo)
    assert app_side == {"warnings": [], "purge": "purge_needs_owner_role", "verified": True}, app_side
    from audit.checks import check_application_db_role

    as_owner = {w.id for w in check_application_db_role()}
    assert as_owner & {"audit.W001", "audit.W002"}, as_owner


def psycopg_error():
    import psycopg

    return psycopg.Error
