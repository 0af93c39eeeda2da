import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifyhub import errors
from notifyhub.services import GRANTS, client_create


class Command(BaseCommand):
    help = "Create an OAuth client allowed the given scopes; prints its id and secret as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, help='Space-separated, e.g. "a b".')
        parser.add_argument("--grant", choices=list(GRANTS), default="client-credentials")
        parser.add_argument(
            "--user", help="Owner, and the user a client-credentials token acts as."
        )
        parser.add_argument("--redirect-uri", default="", help="For the authorization-code grant.")
        parser.add_argument("--tenant", help="The tenant (company) the client belongs to.")
        parser.add_argument(
            "--hub-operator",
            action="store_true",
            help="Act for every tenant (only for the operator's own clients).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = client_create(
                name=options["name"],
                scopes=options["scopes"].split(),
                grant=options["grant"],
                username=options["user"],
                redirect_uris=options["redirect_uri"],
                tenant_id=options["tenant"],
                hub_operator=options["hub_operator"],
            )
        except errors.HubError as exc:
            raise CommandError(exc.description) from exc
        self.stdout.write(
            json.dumps(
                {
                    "client_id": created.application.client_id,
                    "client_secret": created.client_secret,
                    "scopes": created.application.allowed_scope_list(),
                    "tenant": created.application.tenant_id,
                    "hub_operator": created.application.hub_operator,
                }
            )
        )
