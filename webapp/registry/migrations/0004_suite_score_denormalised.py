from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0003_evaluationrun_limit_evaluationrun_reruns"),
    ]

    operations = [
        migrations.AddField(
            model_name="suitescore",
            name="benchmark_scores",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="suitescore",
            name="latency_first_token_s",
            field=models.FloatField(blank=True, help_text="Median time to first token.", null=True),
        ),
        migrations.AddField(
            model_name="suitescore",
            name="latency_decode_per_token_s",
            field=models.FloatField(blank=True, help_text="Median decode time per token.", null=True),
        ),
        migrations.AddField(
            model_name="suitescore",
            name="latency_device",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddIndex(
            model_name="suitescore",
            index=models.Index(fields=["suite", "error"], name="suite_score_error_idx"),
        ),
    ]
