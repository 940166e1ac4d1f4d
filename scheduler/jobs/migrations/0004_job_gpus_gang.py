from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_container_images")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="gpus",
            field=models.PositiveSmallIntegerField(default=1, help_text="GPUs of one host it runs on at once"),
        ),
        migrations.AddField(
            model_name="job",
            name="gang",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
