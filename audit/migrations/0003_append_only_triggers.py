"""PostgreSQL: refuse UPDATE and DELETE on history and audit tables (see audit/immutability.py).
Tables created by later migrations are covered by the post_migrate handler in audit/apps.py."""
from django.db import migrations

from audit.immutability import FUNCTION, TRIGGER, install_triggers


def forwards(apps, schema_editor):
    install_triggers(schema_editor.connection)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = %s",
                       [TRIGGER])
        for (table,) in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {connection.ops.quote_name(table)}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_phi_access")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
