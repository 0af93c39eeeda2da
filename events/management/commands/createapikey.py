import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.services import api_key_create
from notifyhub import errors


class Command(BaseCommand):
    help = "Create a producer API key (the Client-Token header); the key is printed only now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--tenant", help="The tenant whose accounts and users it addresses.")
        parser.add_argument(
            "--any-account",
            action="store_true",
            help="May address every tenant's accounts (only for the operator's own producers).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = api_key_create(
                name=options["name"],
                tenant_id=options["tenant"],
                any_account=options["any_account"],
            )
        except errors.HubError as exc:
            raise CommandError(exc.description) from exc
        self.stdout.write(json.dumps({"id": created.api_key.pk, "key": created.raw_key}))
