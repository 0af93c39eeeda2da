"""`manage.py eventtypes`: the event catalogue, from a shell.

    manage.py eventtypes list
    manage.py eventtypes add ID [--description TEXT] [--schema FILE.json]
    manage.py eventtypes enable ID | disable ID

An event type is never deleted here: events and subscriptions refer to it; disabling it makes
producers' new events of that type refused (422) while what exists stays readable.
"""

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import EventType


def _summary(event_type: EventType) -> dict[str, Any]:
    return {
        "id": event_type.id,
        "description": event_type.description,
        "enabled": event_type.enabled,
        "schema": event_type.schema,
    }


class Command(BaseCommand):
    help = "List, add, enable and disable event types."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("list", help="Every event type, one JSON object per line.")
        add = commands.add_parser("add", help="Add an event type (or update its description).")
        add.add_argument("id")
        add.add_argument("--description", default="")
        add.add_argument("--schema", help="A JSON Schema (2020-12) file every payload must meet.")
        for name in ("enable", "disable"):
            commands.add_parser(name, help=f"{name.title()} an event type.").add_argument("id")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["command"]
        if command == "list":
            for event_type in EventType.objects.order_by("id"):
                self.stdout.write(json.dumps(_summary(event_type)))
            return
        found = EventType.objects.filter(pk=options["id"]).first()
        if command == "add":
            event_type = found or EventType(id=options["id"])
            event_type.description = options["description"] or event_type.description
            if options["schema"]:
                try:
                    event_type.schema = json.loads(Path(options["schema"]).read_text())
                except (OSError, ValueError) as exc:
                    raise CommandError(f"--schema: {exc}") from exc
        else:
            if found is None:
                raise CommandError(f"No event type {options['id']!r}.")
            event_type = found
            event_type.enabled = command == "enable"
        try:
            event_type.full_clean()
        except ValidationError as exc:
            problems = (f"{key}: {' '.join(texts)}" for key, texts in exc.message_dict.items())
            raise CommandError("; ".join(problems)) from exc
        event_type.save()
        self.stdout.write(json.dumps(_summary(event_type)))
