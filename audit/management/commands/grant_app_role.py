"""Give the application's database role exactly the rights it needs (run as the owner role, after
every `migrate`): read and write the ordinary tables, only SELECT and INSERT on history and audit
tables (the trigger refuses UPDATE/DELETE anyway), no TRUNCATE, no ownership. See README, Production."""
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.immutability import protected_tables


class Command(BaseCommand):
    help = "GRANT the application role DML on ordinary tables and only SELECT/INSERT on history and audit tables."

    def add_arguments(self, parser):
        parser.add_argument("role", help="The application's PostgreSQL role (it must exist).")

    def handle(self, *args, role, **options):
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role is for PostgreSQL.")
        q = connection.ops.quote_name
        protected = protected_tables(connection)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise CommandError(f"Role {role!r} does not exist (CREATE ROLE {role} LOGIN PASSWORD '…').")
            cursor.execute("SELECT current_database(), current_schema()")
            database, schema = cursor.fetchone()
            statements = [
                f"GRANT CONNECT ON DATABASE {q(database)} TO {q(role)}",
                f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q(schema)} TO {q(role)}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {q(role)}",
                f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {q(schema)} FROM {q(role)}",
            ]
            statements += [f"REVOKE UPDATE, DELETE ON {q(table)} FROM {q(role)}" for table in protected]
            for sql in statements:
                cursor.execute(sql)
        self.stdout.write(self.style.SUCCESS(
            f"{role}: DML on ordinary tables; SELECT/INSERT only on {len(protected)} history and audit tables."))
