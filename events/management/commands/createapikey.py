import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from events.services import api_key_create


class Command(BaseCommand):
    help = "Create a producer API key (the Client-Token header); the key is printed only now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        created = api_key_create(name=options["name"])
        self.stdout.write(json.dumps({"id": created.api_key.pk, "key": created.raw_key}))
