from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.models import ApiToken
from webapp.accounts.services import api_token_revoke


class Command(BaseCommand):
    help = "Revoke API tokens by their prefix (as shown in the admin)."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The token's first characters, e.g. frt_AbCdEfGh")

    def handle(self, *args, prefix, **options):
        tokens = list(ApiToken.objects.filter(prefix__startswith=prefix[:12], revoked_at__isnull=True))
        if not tokens:
            raise CommandError(f"No active token starts with {prefix!r}.")
        if len(tokens) > 1:
            raise CommandError(f"{len(tokens)} active tokens start with {prefix!r}; give more characters.")
        api_token_revoke(tokens[0])
        self.stdout.write(f"Revoked {tokens[0]}")
