from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifyhub import errors
from notifyhub.services import account_member_add


class Command(BaseCommand):
    help = "Make a user or an OAuth client a member of an account (created when new)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", required=True)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="Username of the member.")
        who.add_argument("--client", help="OAuth client id of the member.")
        parser.add_argument("--tenant", help="The tenant a new account belongs to.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            member = account_member_add(
                account_id=options["account"],
                username=options["user"],
                client_id=options["client"],
                tenant_id=options["tenant"],
            )
        except errors.HubError as exc:
            raise CommandError(exc.description) from exc
        self.stdout.write(f"{member}")
