"""The chain head becomes append-only (one row per event), the trigger covers it, and the retention
purge can no longer be unlocked by a session setting alone (see audit/immutability.py)."""
import django.utils.timezone
from django.db import migrations, models

from audit.immutability import install_triggers


def forwards(apps, schema_editor):
    install_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only_triggers")]
    operations = [
        migrations.RenameField("auditchainhead", "last_sequence", "sequence"),
        migrations.RenameField("auditchainhead", "last_hash", "hash"),
        migrations.AlterField("auditchainhead", "sequence", models.PositiveBigIntegerField(unique=True)),
        migrations.AlterField("auditchainhead", "hash", models.CharField(max_length=64)),
        migrations.AddField("auditchainhead", "recorded_at",
                            models.DateTimeField(auto_now_add=True, default=django.utils.timezone.now), preserve_default=False),
        migrations.AlterModelOptions("auditchainhead", {"ordering": ["sequence"]}),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
