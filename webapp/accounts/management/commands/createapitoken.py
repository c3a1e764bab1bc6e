from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.services import TokenError, api_token_create_for_username


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")

    def handle(self, *args, username, name, **options):
        try:
            _, token = api_token_create_for_username(username=username, name=name)
        except TokenError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(token)
