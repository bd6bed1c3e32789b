# AllergyFlag belongs to the prescription: the model moved to the core app (issue 12). State only
# here; pharmacy 0006 takes the model over and renames its tables (rows and history kept).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0002_inbound_pipeline'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='HistoricalAllergyFlag'),
                migrations.DeleteModel(name='AllergyFlag'),
            ],
            database_operations=[],
        ),
    ]
