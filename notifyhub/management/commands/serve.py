from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from notifyhub.serving import default_processes, serve


class Command(BaseCommand):
    help = "Serve HTTP and streams with one daphne process per core on one port (production)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--processes", type=int, default=default_processes())
        parser.add_argument("--application", default="notifyhub.asgi:application")

    def handle(self, *args: Any, **options: Any) -> None:
        serve(
            host=options["host"],
            port=options["port"],
            processes=options["processes"],
            application=options["application"],
        )
