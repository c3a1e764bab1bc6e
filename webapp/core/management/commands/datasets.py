"""``manage.py datasets status [--json] [--verify]`` and ``manage.py datasets prefetch (--suite S | --task T ...)
[--revision R]``: the dataset mirror's commands (``python -m evaluation datasets``) for staff on the web host,
with the mirror at settings.FRONTIER_DATASETS_DIR unless --root says otherwise."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evaluation import datasets_cli


class Command(BaseCommand):
    help = "The dataset mirror the workers read: which benchmarks' data are present, and fetching them."

    def add_arguments(self, parser):
        datasets_cli.add_arguments(parser)

    def handle(self, *args, **options):
        options["root"] = options.get("root") or settings.FRONTIER_DATASETS_DIR

        class Namespace:
            pass

        namespace = Namespace()
        namespace.__dict__.update(options)
        self.stdout.ending = self.stderr.ending = ""  # print() below ends its own lines
        if datasets_cli.run(namespace, out=self.stdout, err=self.stderr):
            raise CommandError("the dataset mirror could not be filled (see above)")
