# DataVersion now belongs to the core app (webapp/core/models.py); its table is kept (state only).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("leaderboard", "0001_initial"), ("core", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="DataVersion")],
                                            database_operations=[]),
    ]
