"""``manage.py reevaluate_stale [--benchmark KEY] [--dry-run] [--json]``: queue the re-evaluation of every stale
result (its task hash or dataset revision is not the current one; webapp.registry.selectors.stale)."""

import json

from django.core.management.base import BaseCommand

from webapp.registry.services import stale_results_reevaluate


class Command(BaseCommand):
    help = "Queue the re-evaluation of every stale result (task files or dataset revision changed since)."

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", help="only this benchmark key (e.g. pope)")
        parser.add_argument("--dry-run", action="store_true", help="list what would be queued, queue nothing")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def handle(self, *args, benchmark=None, dry_run=False, json=False, **options):
        outcome = stale_results_reevaluate(benchmark_key=benchmark, dry_run=dry_run)
        if json:
            self.stdout.write(_json(outcome))
            return
        for run in outcome["runs"]:
            what = "would queue" if dry_run else f"queued run {run['run']}:"
            self.stdout.write(f"checkpoint {run['checkpoint']} {run['suite']}: {what} {', '.join(run['benchmarks'])}")
            for key, reasons in run["reasons"].items():
                self.stdout.write(f"    {key}: {'; '.join(reasons)}")
        for refusal in outcome["refused"]:
            self.stdout.write(f"checkpoint {refusal['checkpoint']} {refusal['suite']}: not queued: {refusal['detail']}")
        benchmarks = sum(len(run["benchmarks"]) for run in outcome["runs"])
        self.stdout.write(
            f"{outcome['stale']} stale result(s); {outcome['already_queued']} already being re-evaluated; "
            f"{'would queue' if dry_run else 'queued'} {benchmarks} benchmark(s) in {len(outcome['runs'])} run(s)."
        )


def _json(outcome: dict) -> str:
    return json.dumps(outcome, indent=2, sort_keys=True)
