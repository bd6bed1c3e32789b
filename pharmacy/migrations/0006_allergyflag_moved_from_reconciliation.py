# AllergyFlag moved from reconciliation to the core (issue 12): the model joins pharmacy's state on
# the existing tables, which are then renamed reconciliation_* → pharmacy_* (rows, history, the
# append-only trigger on PostgreSQL all kept); content types (and so group permissions) follow.

import django.db.models.deletion
import django.utils.timezone
import simple_history.models
from django.conf import settings
from django.db import migrations, models

MODELS = ('allergyflag', 'historicalallergyflag')


def content_types_to_pharmacy(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    db = schema_editor.connection.alias
    for model in MODELS:
        if ContentType.objects.using(db).filter(app_label='pharmacy', model=model).exists():
            continue
        ContentType.objects.using(db).filter(app_label='reconciliation', model=model).update(app_label='pharmacy')


def content_types_to_reconciliation(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    db = schema_editor.connection.alias
    ContentType.objects.using(db).filter(app_label='pharmacy', model__in=MODELS).update(app_label='reconciliation')


class Migration(migrations.Migration):

    dependencies = [
        ('pharmacy', '0005_facility_address'),
        ('reconciliation', '0003_allergyflag_moved_to_pharmacy'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AllergyFlag',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reason', models.CharField(max_length=300)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('cleared_at', models.DateTimeField(blank=True, null=True)),
                        ('allergy', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='flags', to='pharmacy.allergy')),
                        ('cleared_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('prescription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='allergy_flags', to='pharmacy.prescription')),
                    ],
                    options={
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('prescription', 'allergy'), name='allergyflag_unique')],
                        'db_table': 'reconciliation_allergyflag',
                    },
                ),
                migrations.CreateModel(
                    name='HistoricalAllergyFlag',
                    fields=[
                        ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                        ('reason', models.CharField(max_length=300)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('cleared_at', models.DateTimeField(blank=True, null=True)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('allergy', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='pharmacy.allergy')),
                        ('cleared_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('prescription', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='pharmacy.prescription')),
                    ],
                    options={
                        'verbose_name': 'historical allergy flag',
                        'verbose_name_plural': 'historical allergy flags',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                        'db_table': 'reconciliation_historicalallergyflag',
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='allergyflag', table=None),
        migrations.AlterModelTable(name='historicalallergyflag', table=None),
        migrations.RunPython(content_types_to_pharmacy, content_types_to_reconciliation),
    ]
