# DataVersion moved here from the leaderboard app: its table stays where it is (state only).
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("leaderboard", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DataVersion",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("counter", models.PositiveBigIntegerField(default=0)),
                        ("changed_at", models.DateTimeField()),
                    ],
                    options={"db_table": "leaderboard_dataversion"},
                ),
            ],
            database_operations=[],
        ),
    ]
