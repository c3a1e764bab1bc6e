"""Published rows stored the paper's nominal size as N. Each gets it as its nominal size; where the model is known
(fitting.published.KNOWN_MODELS, frozen here as of this migration) N becomes the counted size, else N stays the
nominal one, marked as not counted. Uploaded LLMs keep their counted N and get the size their name gives, if any."""
import re

from django.db import migrations
from django.db.models import F
from django.utils import timezone

PUBLISHED = "published"
KNOWN_MODELS = {
    ("qwen1.5-chat", 500_000_000): 463_987_712,
    ("qwen1.5-chat", 1_800_000_000): 1_836_828_672,
    ("qwen1.5-chat", 4_000_000_000): 3_950_369_280,
    ("qwen1.5-chat", 7_000_000_000): 7_721_324_544,
}
SIZE_IN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])", re.IGNORECASE)


def nominal_from_name(name):
    matches = SIZE_IN_NAME.findall(str(name).rsplit("/", 1)[-1])
    if not matches:
        return None
    number, unit = matches[-1]
    return round(float(number) * (1e9 if unit.lower() == "b" else 1e6))


def data_version_bump(apps):
    """What leaderboards show changed (N of published rows): cached answers of the old version are not reused."""
    apps.get_model("core", "DataVersion").objects.filter(pk=1).update(counter=F("counter") + 1,
                                                                     changed_at=timezone.now())


def forwards(apps, schema_editor):
    LanguageModel = apps.get_model("registry", "LanguageModel")
    changed = False
    for llm in LanguageModel.objects.filter(n_params_nominal=None).iterator():
        if llm.revision == PUBLISHED:
            llm.n_params_nominal = llm.n_params
            counted = KNOWN_MODELS.get((llm.family.lower(), llm.n_params))
            llm.n_params_counted = counted is not None
            llm.n_params = counted if counted is not None else llm.n_params
        else:
            llm.n_params_nominal = nominal_from_name(llm.name)
        llm.save(update_fields=["n_params", "n_params_nominal", "n_params_counted"])
        changed = True
    if changed:
        data_version_bump(apps)


def backwards(apps, schema_editor):
    """Published rows get their nominal size back as N (as before the convention)."""
    LanguageModel = apps.get_model("registry", "LanguageModel")
    for llm in LanguageModel.objects.filter(revision=PUBLISHED).exclude(n_params_nominal=None).iterator():
        llm.n_params = llm.n_params_nominal
        llm.save(update_fields=["n_params"])
    data_version_bump(apps)


class Migration(migrations.Migration):
    dependencies = [("registry", "0009_llm_nominal_and_counted_n"), ("core", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
