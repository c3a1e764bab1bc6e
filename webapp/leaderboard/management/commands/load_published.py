from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fitting.points import paper_table_path
from webapp.leaderboard.services import ScoresError, published_scores_load

PAPER_TABLE = paper_table_path()


class Command(BaseCommand):
    help = "Load published (N, V, score) results, by default the paper's reasoning table, as public entries."

    def add_arguments(self, parser):
        parser.add_argument("csv", nargs="?", default=str(PAPER_TABLE))
        parser.add_argument("--suite", default="reasoning")

    def handle(self, *args, csv, suite, **options):
        try:
            count = published_scores_load(Path(csv), suite_name=suite)
        except (ScoresError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Loaded {count} published entries into the {suite} suite; a refit is queued.")
