import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from notifyhub.services import demo_setup


class Command(BaseCommand):
    help = "Create (once) the demo admin user and OAuth clients of a development hub; print them."

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = demo_setup(credentials_path=settings.VAR_DIR / "demo-credentials.json")
        self.stdout.write(json.dumps(credentials, indent=2))
